#!/usr/bin/env python3
"""Build knowledge/data/releases.yaml from the real sglang wheels, without importing them.

  python scripts/build_release_table.py                       # pip-downloads every wheel into a cache dir
  python scripts/build_release_table.py --wheels /tmp/sglang-wheels   # reuse downloaded wheels
  python scripts/build_release_table.py --check               # exit 1 if the committed table is out of date

For each release it reads, with `ast` only:
  * every flag `sglang generate` registers (entrypoints/cli/generate.py -> ServerArgs.add_cli_args ->
    SamplingParams.add_cli_args -> nested config add_cli_args), with spelling, aliases, bool style,
    choices, default and deprecation;
  * what the release does for unset offload flags (`_adjust_offload` branches);
  * the VRAM-analysis log line (format, level, whether it is only computed at debug level);
  * the log lines other tools parse (warmed-up timing, warmup failure, Max peak, Generation failed,
    diffusers fallback, server_args, OOM advice) as format strings with their level;
  * the perf-dump JSON keys;
  * the ValueError messages of the server-args validators.
It then cross-checks the 0.5.10.post1 flag set against tests/fixtures/sglang/generate-help-0.5.10.post1.txt.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _argparse_ast import SUPPRESS, ClassRef, Interpreter, Unknown, Wheel, collect_flags  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "knowledge" / "data" / "releases.yaml"
HELP_FIXTURE = ROOT / "tests" / "fixtures" / "sglang" / "generate-help-0.5.10.post1.txt"
HELP_VERSION = "0.5.10.post1"

VERSIONS = [
    "0.5.9", "0.5.10", "0.5.10.post1", "0.5.11", "0.5.12", "0.5.12.post1", "0.5.13", "0.5.13.post1",
    "0.5.14", "0.5.15", "0.5.15.post1", "0.5.16", "0.5.17", "0.5.18", "0.5.19", "0.5.20", "0.5.21",
    "0.5.22", "0.5.23",
]
MG = "sglang/multimodal_gen"
GENERATE_MODULE = "sglang.multimodal_gen.runtime.entrypoints.cli.generate"
GENERATE_FUNCTION = "add_multimodal_gen_generate_args"

# Log lines other tools parse: key -> substring that identifies the logger call's format string.
LOG_MARKERS = {
    "warmed_up_timing": "(with warmup excluded)",
    "warmup_failed": "Warmup failed",
    "max_peak": "Memory usage - Max peak",
    "generation_failed": "Generation failed",
    "server_args": "server_args: ",
    "diffusers_fallback": "Falling back to diffusers backend",
    "diffusers_explicit": "Using diffusers backend",
    "pixel_data_time": "Pixel data generated successfully in",
    "metrics_dumped": "Metrics dumped to",
    "auto_offload_low_vram": "offloading for GPU with low device memory",
    "auto_layerwise_offload": "Automatically enable dit_layerwise_offload",
    "request_error": "Error executing request",
}
LOG_FILES = ("runtime/entrypoints/", "runtime/managers/", "runtime/server_args", "runtime/utils/perf_logger.py",
             "runtime/utils/logging_utils.py", "registry.py")
VALIDATORS = ("_validate_parallelism", "_validate_cfg_parallel", "_validate_offload", "_adjust_attention_backend",
              "_adjust_parallelism", "_validate_parameters", "_adjust_offload", "_adjust_warmup")
# Source hashes of these functions go into the table, so a reader can see which release changed what.
TRACKED_FUNCTIONS = {
    "_adjust_offload": "server_args", "_adjust_parallelism": "server_args", "_validate_parallelism": "server_args",
    "_validate_cfg_parallel": "server_args", "_validate_offload": "server_args", "_adjust_warmup": "server_args",
    "_adjust_platform_specific": "server_args", "do_mem_analysis": "gpu_worker",
    "dump_benchmark_report": "perf_logger", "maybe_adjust_auto_dit_layerwise_offload": "auto_tune",
}


# ---------------------------------------------------------------------------------------------
# wheels
# ---------------------------------------------------------------------------------------------
def find_wheel(directory: Path, version: str) -> Path | None:
    hits = sorted(directory.glob(f"sglang-{version}-*.whl"))
    return hits[0] if hits else None


def download(version: str, directory: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform",
           "manylinux_2_34_x86_64", "--python-version", "3.11", f"sglang=={version}", "-d", str(directory)]
    subprocess.run(cmd, check=True)
    wheel = find_wheel(directory, version)
    if wheel is None:
        raise SystemExit(f"pip download did not produce a wheel for sglang=={version}")
    return wheel


def module_path(wheel: Wheel, stem: str) -> str | None:
    """Path of a module that moved between releases (server_args.py became a package in 0.5.18)."""
    candidates = {
        "server_args": [f"{MG}/runtime/server_args/server_args.py", f"{MG}/runtime/server_args.py"],
        "gpu_worker": [f"{MG}/runtime/managers/gpu_worker.py"],
        "perf_logger": [f"{MG}/runtime/utils/perf_logger.py"],
        "auto_tune": [f"{MG}/runtime/server_args/auto_tune.py", f"{MG}/runtime/server_args_auto_tune.py"],
        "generate": [f"{MG}/runtime/entrypoints/cli/generate.py"],
        "diffusion_generator": [f"{MG}/runtime/entrypoints/diffusion_generator.py"],
        "compare_perf": [f"{MG}/benchmarks/compare_perf.py"],
    }[stem]
    return next((c for c in candidates if c in wheel.names), None)


def parse(wheel: Wheel, path: str | None) -> ast.Module | None:
    return ast.parse(wheel.source(path)) if path else None


def find_function(tree: ast.AST | None, name: str) -> ast.FunctionDef | None:
    if tree is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


# ---------------------------------------------------------------------------------------------
# format strings
# ---------------------------------------------------------------------------------------------
def template(node: ast.AST, env: dict[str, str] | None = None) -> str:
    """A logger call's message as a format string: f-string holes become {expr}, %-holes stay."""
    env = env or {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            else:
                expr = ast.unparse(part.value)
                if expr in ("GREEN", "RESET", "CYAN", "RED", "YELLOW", "BOLD"):
                    continue  # ANSI colour codes: not part of the text
                spec = ast.unparse(part.format_spec)[2:-1] if part.format_spec else ""
                out.append("{" + expr + (":" + spec if spec else "") + "}")
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return template(node.left, env) + template(node.right, env)
    if isinstance(node, ast.Name) and node.id in env:
        return env[node.id]
    return "{" + ast.unparse(node) + "}"


LOG_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def logger_calls(tree: ast.AST):
    """(level, template, lineno) of every logger.<level>(msg, ...) call; local string variables inlined."""
    strings: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v = node.value
            if isinstance(v, ast.IfExp):  # hint = "..." if cond else ""
                v = v.body
            if isinstance(v, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                strings[node.targets[0].id] = template(v)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_LEVELS
                and isinstance(node.func.value, ast.Name) and "log" in node.func.value.id.lower() and node.args):
            text = template(node.args[0], strings)
            # inline %s arguments that are known string variables (e.g. the residency hint)
            for arg in node.args[1:]:
                if isinstance(arg, ast.Name) and arg.id in strings and "%s" in text:
                    idx = [a for a in node.args[1:]].index(arg)
                    text = _fill_nth_percent(text, idx, strings[arg.id])
            level = "error" if node.func.attr == "exception" else node.func.attr
            yield level, text, node.lineno


def _fill_nth_percent(text: str, n: int, value: str) -> str:
    holes = list(re.finditer(r"%(?:\.\d+)?[sdfr%]", text))
    holes = [h for h in holes if h.group() != "%%"]
    if n < len(holes) and holes[n].group() == "%s":
        h = holes[n]
        return text[: h.start()] + "[" + value + "]" + text[h.end():]
    return text


# ---------------------------------------------------------------------------------------------
# extractors
# ---------------------------------------------------------------------------------------------
def server_args_defaults(wheel: Wheel):
    """dest -> the ServerArgs dataclass default. `sglang generate` passes only the flags present on the
    command line into ServerArgs (get_provided_args), so for those flags this, not argparse's default,
    is what an unset flag means."""
    interp = Interpreter(wheel)
    mod = wheel.module("sglang.multimodal_gen.runtime.server_args")
    cls = interp.lookup_global(mod, "ServerArgs") if mod else None
    missing = object()

    def lookup(dest: str):
        if not isinstance(cls, ClassRef):
            return missing
        value = interp.class_attr(cls, dest)
        if isinstance(value, Unknown):
            return None if value.src == "no default" else missing
        return value
    return lookup, missing


def flag_rows(wheel: Wheel) -> tuple[list[dict], list[str]]:
    actions, unresolved = collect_flags(wheel, GENERATE_MODULE, GENERATE_FUNCTION)
    dataclass_default, missing = server_args_defaults(wheel)
    rows, seen = [], set()
    for a in actions:
        long_opts = [o for o in a.options if o.startswith("--")]
        if not long_opts or long_opts[0] in seen:
            continue
        seen.update(long_opts)
        kw = a.kwargs
        action = kw.get("action")
        action_name = action if isinstance(action, str) else action.node.name if isinstance(action, ClassRef) else None
        choices = kw.get("choices")
        choices = [str(c) for c in choices] if isinstance(choices, (list, tuple)) else []
        if action_name in ("store_true", "store_false", "store_const", "count"):
            style = "switch"
        elif action_name == "StoreBoolean":
            style = "bool_value"
        elif choices:
            style = "choice"
        else:
            style = "value"
        default = kw.get("default", None if action_name != "StoreBoolean" else False)
        if action_name == "store_true" and "default" not in kw:
            default = False
        dest = kw.get("dest") if isinstance(kw.get("dest"), str) else long_opts[0][2:].replace("-", "_")
        if default != SUPPRESS and "." not in dest:
            field_default = dataclass_default(dest)
            if field_default is not missing:
                default = field_default
        help_text = kw.get("help") if isinstance(kw.get("help"), str) else ""
        row = {"flag": long_opts[0], "style": style}
        if len(long_opts) > 1:
            row["aliases"] = long_opts[1:]
        if choices:
            row["choices"] = choices
        if kw.get("nargs") in ("+", "*"):
            row["nargs"] = kw["nargs"]
        row["default"] = _default_text(default)
        if help_text.lstrip().upper().startswith("[DEPRECATED") or "deprecated" in help_text.lower()[:60]:
            row["deprecated"] = True
        if action_name == "RaiseNotImplementedAction":
            row["not_implemented"] = True
        rows.append(row)
    return rows, unresolved


def _default_text(value) -> str | None:
    if value is None or value == SUPPRESS:
        return None  # SUPPRESS: the sampling-param default comes from the model's config
    if isinstance(value, Unknown):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) if value else None
    return str(value)


def vram_analysis(wheel: Wheel) -> dict:
    path = module_path(wheel, "gpu_worker")
    tree = parse(wheel, path)
    fn = find_function(tree, "do_mem_analysis")
    if fn is None:
        return {"format": "none", "level": "none"}
    calls = [c for c in logger_calls(fn) if "GPU memory" in c[1] or "Peak GPU memory" in c[1]]
    if not calls:
        return {"format": "none", "level": "none"}
    level, text, line = calls[-1]
    if "Related offload server args to disable" in text:
        fmt = "A"
    elif "--component-residency" in text:
        fmt = "C"
    elif "Components that can remain on GPU" in text:
        fmt = "B"
    else:
        fmt = "none"
    # From 0.5.10 the caller only runs the analysis when the logger is at DEBUG.
    gated = False
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "do_mem_analysis" in ast.unparse(node.body[0]) and \
                "isEnabledFor(logging.DEBUG)" in ast.unparse(node.test):
            gated = True
    return {"format": fmt, "level": level, "only_at_debug": gated or level == "debug",
            "template": text, "source": f"{path}:{line}"}


def log_lines(wheel: Wheel) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    files = [p for p in wheel.py_files(MG + "/") if any(p.startswith(f"{MG}/{f}") for f in LOG_FILES)]
    for path in files:
        src = wheel.source(path)
        if not any(m in src for m in LOG_MARKERS.values()):
            continue  # cheap prefilter before parsing
        for level, text, line in logger_calls(ast.parse(src)):
            for key, marker in LOG_MARKERS.items():
                if marker in text and all(x["template"] != text for x in found.get(key, [])):
                    found.setdefault(key, []).append({"level": level, "template": text, "source": f"{path}:{line}"})
    oom = _module_string(wheel, module_path(wheel, "gpu_worker"), "OOM_MSG")
    if oom:
        found["oom_advice"] = [{"level": "warning", "template": oom.strip(),
                                "source": f"{module_path(wheel, 'gpu_worker')}:OOM_MSG"}]
    return dict(sorted(found.items()))


def _module_string(wheel: Wheel, path: str | None, name: str) -> str | None:
    tree = parse(wheel, path)
    for node in (tree.body if tree else []):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            if isinstance(node.value, (ast.Constant, ast.JoinedStr)):
                return template(node.value)
    return None


def offload_defaults(wheel: Wheel) -> list[str]:
    """The `_adjust_offload` branches: under which condition which unset offload flag becomes what."""
    path = module_path(wheel, "server_args")
    fn = find_function(parse(wheel, path), "_adjust_offload")
    if fn is None:
        return []
    out: list[str] = []

    def sets(body) -> list[str]:
        res = []
        for stmt in body:
            for node in ast.walk(stmt):
                if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
                        and isinstance(node.value, ast.Constant)):
                    res.append(f"{node.targets[0].attr}={node.value.value}")
        return res

    def is_unset_guard(stmt) -> bool:
        return isinstance(stmt, ast.If) and ast.unparse(stmt.test).endswith("is None")

    def walk(stmts, prefix: str) -> None:
        for stmt in stmts:
            if not isinstance(stmt, ast.If) or is_unset_guard(stmt):
                continue
            cond = re.sub(r"\s+", " ", ast.unparse(stmt.test).replace("self.", "").replace("current_platform.", ""))
            if any(isinstance(s, ast.If) and not is_unset_guard(s) for s in stmt.body):
                walk(stmt.body, f"{prefix}{cond} and ")
            else:
                body_sets = sets(stmt.body)
                stops = any(isinstance(s, ast.Return) for s in stmt.body)
                out.append(f"if {prefix}{cond}: " + (", ".join(body_sets) or "nothing") + ("; stop" if stops else ""))
            orelse = stmt.orelse
            if len(orelse) == 1 and isinstance(orelse[0], ast.If) and not is_unset_guard(orelse[0]):
                walk(orelse, f"{prefix}not ({cond}) and ")
            elif orelse:
                out.append(f"if {prefix}not ({cond}): " + ", ".join(sets(orelse)))
    walk(fn.body, "")
    return out  # each assignment applies only to flags the user left unset (`is None` guards)


def perf_dump_format(wheel: Wheel) -> dict:
    path = module_path(wheel, "perf_logger")
    tree = parse(wheel, path)
    fn = find_function(tree, "dump_benchmark_report")
    if fn is None:
        return {}
    keys, items = [], {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "report" and isinstance(node.value, ast.Dict):
                keys = [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
            elif isinstance(node.value, ast.ListComp) and isinstance(node.value.elt, ast.Dict):
                items[name] = [k.value for k in node.value.elt.keys if isinstance(k, ast.Constant)]
    snapshot_keys: list[str] = []
    to_dict = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "MemorySnapshot":
            to_dict = find_function(node, "to_dict")
    if to_dict is not None:
        for node in ast.walk(to_dict):
            if isinstance(node, ast.Dict):
                snapshot_keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
    fmt = {"keys": keys, "stage_item_keys": items.get("formatted_steps", [])}
    if "denoise_steps_ms" in items:
        fmt["denoise_step_item_keys"] = items["denoise_steps_ms"]
    if snapshot_keys and "memory_checkpoints" in keys:
        fmt["memory_checkpoint_keys"] = snapshot_keys
    fmt["source"] = path
    return fmt


def validation_messages(wheel: Wheel) -> list[str]:
    path = module_path(wheel, "server_args")
    tree = parse(wheel, path)
    out: list[str] = []
    for name in VALIDATORS:
        fn = find_function(tree, name)
        for node in ast.walk(fn) if fn else []:
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                text = re.sub(r"\s+", " ", template(node.exc.args[0]))
                out.append(f"{name}: {text}")
    return out


def function_hashes(wheel: Wheel) -> dict[str, str]:
    out = {}
    for fname, stem in TRACKED_FUNCTIONS.items():
        fn = find_function(parse(wheel, module_path(wheel, stem)), fname)
        if fn is not None:
            out[fname] = hashlib.sha1(ast.dump(fn).encode()).hexdigest()[:10]
    return out


def warmup_argv(flags: dict[str, dict]) -> list[str]:
    mode = flags.get("--warmup-mode")
    if mode and "request" in mode.get("choices", []):
        return ["--warmup-mode", "request"]
    if "--warmup" in flags:
        return ["--warmup"]
    return []


def build_release(version: str, wheel_path: Path) -> tuple[dict, list[str]]:
    wheel = Wheel(str(wheel_path))
    rows, unresolved = flag_rows(wheel)
    by_flag = {r["flag"]: r for r in rows}
    vram = vram_analysis(wheel)
    perf_mode = by_flag.get("--performance-mode")
    server_args_path = module_path(wheel, "server_args")
    entry = {
        "id": f"sglang-{version}",
        "title": f"sglang {version}",
        "summary": f"`sglang generate` capabilities of sglang {version}, read from the PyPI wheel {wheel_path.name}.",
        "sources": [
            {"kind": "code", "ref": f"sglang=={version}:{server_args_path}", "note": "flags, defaults, validation"},
            {"kind": "code", "ref": f"sglang=={version}:{module_path(wheel, 'generate')}", "note": "generate CLI entry"},
        ],
        "releases": {"since": version, "until": version},
        "version": version,
        "wheel": wheel_path.name,
        "flags": rows,
        "warmup": warmup_argv(by_flag),
        "vram_log_format": vram["format"],
        "vram_log_level": vram["level"],
        "vram_log_only_at_debug": bool(vram.get("only_at_debug")),
        "vram_log_template": vram.get("template", ""),
        "vram_log_source": vram.get("source", ""),
        "offload_defaults": offload_defaults(wheel),
        "performance_mode": perf_mode is not None,
        "performance_mode_default": (perf_mode or {}).get("default"),
        "log_lines": log_lines(wheel),
        "perf_dump": perf_dump_format(wheel),
        "validation_errors": validation_messages(wheel),
        "function_hashes": function_hashes(wheel),
    }
    if unresolved:
        entry["unresolved_flag_sources"] = unresolved
    return entry, unresolved


# ---------------------------------------------------------------------------------------------
# --help cross-check
# ---------------------------------------------------------------------------------------------
def help_flags(text: str) -> dict[str, str]:
    """Long options in an argparse --help text -> 'switch' | 'bool_value' | 'value'."""
    usage = text.split("\n\n", 1)[0]
    out: dict[str, str] = {}
    for m in re.finditer(r"\[(--[A-Za-z0-9][\w.\-]*)((?:\s(?:[^\[\]]|\[[^\[\]]*\])+)?)\]", usage):
        flag, rest = m.group(1), (m.group(2) or "").strip()
        out[flag] = "switch" if not rest else "bool_value" if rest.startswith("[") and rest.count("[") == 1 and \
            not rest.endswith("...]") else "value"
    for m in re.finditer(r"^\s{2}(--\S+.*?)(?:\s{2,}|$)", text.split("\n\n", 2)[-1], re.M):
        for part in m.group(1).split(", "):
            if part.startswith("--"):
                out.setdefault(part.split(" ", 1)[0], "alias")
    return out


def cross_check(entry: dict, help_text: str) -> list[str]:
    from_help = help_flags(help_text)
    from_code: dict[str, str] = {}
    for row in entry["flags"]:
        from_code[row["flag"]] = row["style"] if row["style"] in ("switch", "bool_value") else "value"
        for alias in row.get("aliases", []):
            from_code[alias] = "alias"
    problems = [f"only in --help: {f}" for f in sorted(set(from_help) - set(from_code)) if f != "--help"]
    problems += [f"only in code: {f}" for f in sorted(set(from_code) - set(from_help))]
    for f in sorted(set(from_help) & set(from_code)):
        a, b = from_help[f], from_code[f]
        if "alias" not in (a, b) and a != b:
            problems.append(f"style differs for {f}: --help says {a}, code says {b}")
    return problems


# ---------------------------------------------------------------------------------------------
def render(entries: list[dict]) -> str:
    header = ("# GENERATED by scripts/build_release_table.py from the sglang PyPI wheels; do not edit by hand.\n"
              "# Regenerate: python scripts/build_release_table.py --wheels DIR (or without --wheels to download).\n")
    return header + yaml.safe_dump({"entries": entries}, sort_keys=False, width=120, allow_unicode=True,
                                   default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheels", type=Path, help="directory with already-downloaded sglang-*.whl files")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if the table would change")
    args = ap.parse_args(argv)

    cache = args.wheels or Path(tempfile.gettempdir()) / "sglang-wheels-cache"
    cache.mkdir(parents=True, exist_ok=True)
    entries = []
    for version in VERSIONS:
        wheel = find_wheel(cache, version) or download(version, cache)
        entry, unresolved = build_release(version, wheel)
        entries.append(entry)
        note = f" (could not follow: {', '.join(unresolved)})" if unresolved else ""
        print(f"{version}: {len(entry['flags'])} flags, warmup={entry['warmup']}, "
              f"vram={entry['vram_log_format']}/{entry['vram_log_level']}{note}", file=sys.stderr)

    help_entry = next(e for e in entries if e["version"] == HELP_VERSION)
    problems = cross_check(help_entry, HELP_FIXTURE.read_text(encoding="utf-8"))
    print(f"--help cross-check for {HELP_VERSION}: " + ("agrees" if not problems else f"{len(problems)} differences"),
          file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)

    text = render(entries)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; rerun without --check", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
