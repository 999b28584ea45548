"""The run parts on their own: log following, error classes, redaction, GPU locks, records."""

from __future__ import annotations

import json

import pytest

from sglang_diffusion_mcp.tools.runs import gpu_lock, store
from sglang_diffusion_mcp.tools.runs.log_progress import LogFollower, LogState
from sglang_diffusion_mcp.tools.runs.redact import Redactor, env_for_record, is_secret_name

GREEN, CYAN, RESET = "\033[92m", "\033[1;36m", "\033[0;0m"
LOG = (
    '[05-01 10:00:00] server_args: {"model_path": "m", "num_gpus": 1}\n'
    "[05-01 10:00:01] Loading pipeline modules...\n"
    "[05-01 10:00:02] Processing warmup req... (1/1)\n"
    "\r  0%|          | 0/2 [00:00<?, ?it/s]\r 50%|█████     | 1/2 [00:00<00:00,  9.1it/s]\r100%|██████████| 2/2\n"
    f"[05-01 10:00:03] Warmup req (1/1) processed in {GREEN}0.85{RESET} seconds\n"
    "[05-01 10:00:03] [TextEncodingStage] started...\n"
    "[05-01 10:00:03] [TextEncodingStage] finished in 0.1000 seconds\n"
    "[05-01 10:00:03] [DenoisingStage] started... (56.79 GB left)\n"
)


def test_phases_and_progress_in_any_chunking():
    for size in (1, 7, 64, 10_000):
        st, fractions = LogState(), []
        for i in range(0, len(LOG), size):
            st.feed(LOG[i:i + size])
            fractions.append(st.fraction())
        assert fractions == sorted(fractions)
        assert st.server_args == {"model_path": "m", "num_gpus": 1}
        assert st.warmup_done and not st.in_warmup and st.step == 0  # warmup's bar is not the request's
        assert st.stages_done == {"TextEncodingStage": 0.1} and st.phase == "denoising"
    st.feed("\r 25%|██▌       | 5/20 [00:01<00:03,  4.2it/s]")  # no newline yet: still counts
    assert (st.step, st.steps_total) == (5, 20) and st.message() == "denoising step 5/20"
    before = st.fraction()
    st.feed(f"\r100%|██████████| 20/20\n[05-01] Warmed-up request processed in {GREEN}6.12{RESET} seconds "
            "(with warmup excluded)\n")
    assert st.warmup_excluded_s == 6.12 and st.fraction() > before
    assert all("\x1b" not in line and "\r" not in line for line in st.tail)


@pytest.mark.parametrize("line,code", [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "oom"),
    ("Cannot access gated repo for url https://huggingface.co/x. Access to model x is restricted. You must have "
     "access to it", "gated_model"),
    ("ValueError: Model or revision not found at a/b. Please check the model ID", "model_not_found"),
    ("error: unrecognized arguments: --nope", "bad_flag"),
    ("sglang: error: argument --warmup-mode: invalid choice: 'x'", "bad_flag"),
    ("RuntimeError: CUDA error: an illegal memory access was encountered", "cuda"),
    ("torch.distributed.DistBackendError: NCCL error in: x, unhandled cuda error", "nccl"),
    ("OSError: [Errno 28] No space left on device", "disk_full"),
])
def test_error_classes(line, code):
    st = LogState()
    st.feed("[05-01] Loading pipeline modules...\n" + line + "\n")
    assert st.error_code() == code


def test_gated_wins_over_not_found_and_oom_over_cuda():
    st = LogState()
    st.feed("ValueError: Model or revision not found at f. Error: 403\nCannot access gated repo for url u\n")
    assert st.error_code() == "gated_model"
    st = LogState()
    st.feed("RuntimeError: CUDA error: out of memory\n")
    assert st.error_code() == "oom"


def test_follower_reads_only_what_was_appended_and_survives_split_utf8(tmp_path):
    path = tmp_path / "log"
    data = "\r 50%|█████     | 1/2\n".encode()
    cut = data.index("█".encode()) + 1  # inside a multibyte character
    f = LogFollower(str(path), warmup_expected=False)
    assert not f.poll()
    path.write_bytes(b"[x] [DenoisingStage] started...\n" + data[:cut])
    assert f.poll()
    with path.open("ab") as out:
        out.write(data[cut:])
    f.poll()
    assert (f.state.step, f.state.steps_total) == (1, 2) and "\ufffd" not in "".join(f.state.tail)


def test_garbage_never_raises():
    st = LogState()
    st.feed("\x00\xff server_args: {not json\n" + "]" * 10_000 + "\n\r\r\r\n")
    st.close()
    assert isinstance(st.server_args, str) and st.error_code() is None


def test_redaction_by_value():
    env = {"HF_TOKEN": "hf_abcdefgh", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "MY_PASSWORD": "hunter2222",
           "SHORT_KEY": "1", "SGLANG_X": "keep", "PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0"}
    r = Redactor.from_env(env)
    assert r.text("token=hf_abcdefgh and s3cr3t-value, hunter2222, 1") == "token=*** and ***, ***, 1"
    assert r.data({"a": ["hf_abcdefgh"], "hf_abcdefgh": 1}) == {"a": ["***"], "***": 1}
    assert is_secret_name("HUGGING_FACE_HUB_TOKEN") and not is_secret_name("KEYBOARD")
    assert env_for_record(env, env) == {"AWS_SECRET_ACCESS_KEY": None, "CUDA_VISIBLE_DEVICES": "0",
                                        "HF_TOKEN": None, "MY_PASSWORD": None, "PATH": None, "SGLANG_X": "keep",
                                        "SHORT_KEY": None}


def test_gpu_locks_all_or_none(tmp_path):
    locks = str(tmp_path)
    a = gpu_lock.GpuLocks(locks, [0, 1], "run-a")
    assert a.try_acquire() == []
    b = gpu_lock.GpuLocks(locks, [1, 2], "run-b")
    assert b.try_acquire() == ["GPU 1 (in use by run run-a)"]
    assert b.fds == []  # took none, so GPU 2 stays free
    c = gpu_lock.GpuLocks(locks, [2], "run-c")
    assert c.try_acquire() == []
    assert gpu_lock.holders(locks) == {"0": "run-a", "1": "run-a", "2": "run-c"}
    a.release()
    assert b.try_acquire() == ["GPU 2 (in use by run run-c)"]
    c.release()
    assert b.try_acquire() == []
    shared = gpu_lock.GpuLocks(locks, [0], "s1", shared=True), gpu_lock.GpuLocks(locks, [0], "s2", shared=True)
    assert [s.try_acquire() for s in shared] == [[], []]
    assert gpu_lock.GpuLocks(locks, [0], "x").try_acquire() == ["GPU 0 (in use by another run)"]


def test_records_are_replaced_atomically_and_merged(tmp_path):
    rdir = str(tmp_path / "r")
    store.create_record(rdir, {"run_id": "r", "status": "queued"})
    store.update_record(rdir, {"status": "running"})
    store.update_record(rdir, lambda r: r | {"pid": 5})
    rec = json.loads((tmp_path / "r" / "run.json").read_text())
    assert rec["status"] == "running" and rec["pid"] == 5
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["run.json", "run.lock"]
    assert not store.supervisor_alive(rdir)
    assert store.valid_run_id(store.new_run_id()) and not store.valid_run_id("../x")


def test_stream_redactor_catches_secrets_split_anywhere():
    from sglang_diffusion_mcp.tools.runs.redact import StreamRedactor

    secrets = ["hf_SuperSecretValue12345", "sk-another-secret-987", "hf_Super"]  # one is a prefix of another
    data = ("start hf_SuperSecretValue12345 mid\r 50%|█ sk-another-secret-987\n hf_SuperX hf_Sup"
            "\nend hf_SuperSecretValue12345").encode()
    whole = StreamRedactor(secrets)
    expected = whole.feed(data) + whole.finish()
    assert b"Secret" not in expected and b"sk-another" not in expected and b"hf_Super" not in expected
    for size in (1, 2, 3, 5, 7, 13, 64):
        r, out = StreamRedactor(secrets), b""
        for i in range(0, len(data), size):
            out += r.feed(data[i:i + size])
        assert out + r.finish() == expected, size
    # what could still become a secret is held back, nothing else: progress reaches the log at once
    r = StreamRedactor(secrets)
    assert r.feed(b"\r 42%|####  | 42/100") == b"\r 42%|####  | 42/100"
    assert r.feed(b" token hf_Su") == b" token " and r.feed(b"perSecretValue12345!") == b"***!"
    assert StreamRedactor([]).feed(b"hf_SuperSecretValue12345") == b"hf_SuperSecretValue12345"
    # a whole secret whose end could also start another one is still redacted whole
    r = StreamRedactor(["abcdef", "defghi"])
    assert r.feed(b"x abcdef") + r.feed(b"ghi") + r.finish() == b"x ***ghi"


def test_result_tail_and_server_args_are_capped():
    from sglang_diffusion_mcp.tools.runs.results import capped_server_args, capped_tail

    st = LogState()
    st.feed("short line\n" + "x" * 2_000_000 + "\n" + "\n".join(f"line {i} " + "y" * 300 for i in range(60)) + "\n")
    tail = capped_tail(list(st.tail))
    assert len(tail) <= 40 and all(len(line) <= 400 for line in tail)
    assert sum(map(len, tail)) <= 6000 + 100 and "earlier line(s) cut" in tail[0] and tail[-1].startswith("line 59")
    st = LogState()
    st.feed("z" * 2_000_000 + "\n")
    assert len(st.tail[0]) == 400 and st.tail[0].endswith("…[cut]")
    args = capped_server_args({"model_path": "m", "long": "v" * 100_000, **{f"k{i}": "w" * 300 for i in range(100)}})
    assert args["model_path"] == "m" and len(args["long"]) == 400 and len(json.dumps(args)) < 9000
    assert "_truncated" in args


def test_version_cache_follows_the_files_of_the_command_and_expires(tmp_path, monkeypatch):
    import os
    import sys
    import time

    from sglang_diffusion_mcp.tools.runs import runner

    script = tmp_path / "sglang_entry.py"
    script.write_text("import os\nprint('sglang version: ' + os.environ['FAKE_V'])\n")
    cmd, cache = [sys.executable, str(script)], str(tmp_path / "cache.json")
    runner._version_cache.clear()
    monkeypatch.setenv("FAKE_V", "0.5.9")
    assert runner.sglang_version(cmd, cache) == "0.5.9"
    monkeypatch.setenv("FAKE_V", "0.5.23")  # upgraded in place; nothing it runs from has changed yet
    assert runner.sglang_version(cmd, cache) == "0.5.9"
    later = time.time() + 5
    os.utime(script, (later, later))  # the script (not the interpreter) was reinstalled
    assert runner.sglang_version(cmd, cache) == "0.5.23"
    # the disk cache expires: an entry from two hours ago is asked again, in a fresh process too
    monkeypatch.setenv("FAKE_V", "0.5.10")
    data = json.loads(open(cache).read())
    for entry in data.values():
        entry["at"] -= 7200
    open(cache, "w").write(json.dumps(data))
    runner._version_cache.clear()
    assert runner.sglang_version(cmd, cache) == "0.5.10"
    # dropping the disk file (another process saw a stale version) is seen by this process's memory cache
    monkeypatch.setenv("FAKE_V", "0.5.11")
    assert runner.sglang_version(cmd, cache) == "0.5.10"
    os.remove(cache)
    assert runner.sglang_version(cmd, cache) == "0.5.11"
