"""What a VRAM analysis asks for, as flag changes spelled for the release that wrote the log, and the command
with those changes applied. parse_vram_log (tools/vram_log.py) finds the analysis; this module edits argv."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pydantic import BaseModel, Field

from .planning.cmdline import command_line, env_and_argv
from .problems import Problem, ToolInputError

# Which component each legacy offload flag moves (0.5.9-0.5.19 spelling).
LEGACY_FLAG_COMPONENTS = {
    "--vae-cpu-offload": ("vae",), "--image-encoder-cpu-offload": ("image_encoder",),
    "--text-encoder-cpu-offload": ("text_encoder", "text_encoder_2"),
    "--dit-cpu-offload": ("transformer",), "--dit-layerwise-offload": ("transformer",),
}
COMPONENT_LEGACY_FLAG = {"vae": "--vae-cpu-offload", "image_encoder": "--image-encoder-cpu-offload",
                         "text_encoder": "--text-encoder-cpu-offload", "text_encoder_2": "--text-encoder-cpu-offload",
                         "transformer": "--dit-cpu-offload"}
# Group aliases --cpu-offload-components / --layerwise-offload-components accept (0.5.18+).
COMPONENT_ALIASES = {"transformer": ("transformer", "dit"), "text_encoder": ("text_encoder",),
                     "text_encoder_2": ("text_encoder_2", "text_encoder"), "image_encoder": ("image_encoder",),
                     "vae": ("vae",)}
LIST_FLAGS = {"--cpu-offload-components", "--layerwise-offload-components", "--layerwise-offload-modules",
              "--component-residency"}
BOOL_VALUES = {"true", "false", "1", "0", "yes", "no"}



class SuggestedChange(BaseModel):
    component: str
    add: list[str] = Field(default_factory=list, description="argv tokens to add, after the removals.")
    remove: list[str] = Field(default_factory=list,
                              description="Flags to drop, each with whatever values it has (a flag also in `add` "
                                          "is replaced by it). Flag names only, e.g. '--vae-cpu-offload'.")
    remove_values: dict[str, list[str]] = Field(
        default_factory=dict, description="Values to drop from list-valued flags, {flag: [values]}; the flag keeps "
                                          "its other values, e.g. {'--cpu-offload-components': ['vae']}.")
    reason: str = ""


class ImprovedCommand(BaseModel):
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    command: str = Field(description="One shell line: env assignments, then the quoted argv.")
    applied: list[str] = Field(default_factory=list, description="What was changed, one line each.")
    problems: list[Problem] = Field(default_factory=list, description="Validation findings, when a validator ran.")


def _family(fmt: str | None) -> str | None:
    return fmt[0] if fmt and fmt.startswith("C") else ("A" if fmt in ("A", "A0") else fmt)


def suggest_changes(fmt: str | None, components: list[str], flags_to_disable: list[str]) -> list[SuggestedChange]:
    """The changes the log asks for, spelled for the release that wrote it."""
    family = _family(fmt)
    out: list[SuggestedChange] = []
    if family == "A":
        # These flags default to on (None -> True) for most models, so removing them is not enough: set false.
        for flag in flags_to_disable:
            comps = [c for c in LEGACY_FLAG_COMPONENTS.get(flag, ("?",)) if c in components] or \
                list(LEGACY_FLAG_COMPONENTS.get(flag, (flag.lstrip("-"),)))
            out.append(SuggestedChange(component=",".join(comps), add=[flag, "false"], remove=[flag],
                                       reason="The log lists it under 'Related offload server args to disable'."))
        if fmt == "A0":
            for comp in components:
                flag = COMPONENT_LEGACY_FLAG.get(comp)
                if flag:
                    out.append(SuggestedChange(component=comp, add=[flag, "false"], remove=[flag],
                                               reason="0.5.8 says it can stay resident."))
    elif family == "B":
        for comp in components:
            flag = COMPONENT_LEGACY_FLAG.get(comp)
            aliases = list(COMPONENT_ALIASES.get(comp, (comp,)))
            values = {list_flag: aliases for list_flag in ("--cpu-offload-components", "--layerwise-offload-components")}
            add = [flag, "false"] if flag else []
            remove = ["--dit-layerwise-offload"] if comp == "transformer" else []
            if flag:
                remove.append(flag)
            out.append(SuggestedChange(component=comp, add=add, remove=remove, remove_values=values,
                                       reason="The log says it can remain on GPU; 0.5.18-0.5.19 set residency with "
                                              "--cpu-offload-components / --layerwise-offload-components."))
    elif family == "C":
        for comp in components:
            out.append(SuggestedChange(component=comp, add=["--component-residency", f"{comp}=resident"],
                                       reason="The log says it can remain on GPU; --component-residency overrides "
                                              "the older offload flags."))
    return out


def _norm_flag(token: str) -> str:
    head = token.split("=", 1)[0]
    return "--" + head[2:].replace("_", "-") if head.startswith("--") else head


def _flag_span(argv: list[str], i: int) -> int:
    """Index just past flag argv[i] and its values."""
    token = argv[i]
    if "=" in token:
        return i + 1
    flag = _norm_flag(token)
    j = i + 1
    if flag in LIST_FLAGS:
        while j < len(argv) and not argv[j].startswith("-"):
            j += 1
        return j
    if j < len(argv) and argv[j].lower() in BOOL_VALUES:
        return j + 1
    return j


def _drop_flag(argv: list[str], flag: str) -> tuple[list[str], bool]:
    out, i, changed = [], 0, False
    while i < len(argv):
        if argv[i].startswith("--") and _norm_flag(argv[i]) == flag:
            i, changed = _flag_span(argv, i), True
            continue
        out.append(argv[i])
        i += 1
    return out, changed


def _list_values(argv: list[str], i: int) -> tuple[list[str], int]:
    if "=" in argv[i]:
        return argv[i].split("=", 1)[1].split(","), i + 1
    end = _flag_span(argv, i)
    return [v for tok in argv[i + 1:end] for v in tok.split(",")], end


def _drop_list_value(argv: list[str], flag: str, value: str) -> tuple[list[str], bool]:
    out, i, changed = [], 0, False
    while i < len(argv):
        if argv[i].startswith("--") and _norm_flag(argv[i]) == flag:
            values, end = _list_values(argv, i)
            kept = [v for v in values if v and v.strip().lower() != value]
            if len(kept) != len([v for v in values if v]):
                changed = True
                # an emptied list would mean something else ("offload nothing" is spelled 'none')
                out += [argv[i].split("=", 1)[0], *(kept or ["none"])]
            else:
                out += argv[i:end]
            i = end
            continue
        out.append(argv[i])
        i += 1
    return out, changed


def _contains(argv: list[str], tokens: list[str]) -> bool:
    n = len(tokens)
    return any(argv[i:i + n] == tokens for i in range(len(argv) - n + 1))


def _merge_residency(argv: list[str], assignment: str) -> list[str]:
    """--component-residency takes several values (nargs='+'): a second flag would replace the first, so merge."""
    comp = assignment.split("=", 1)[0]
    for i, token in enumerate(argv):
        if token.startswith("--") and _norm_flag(token) == "--component-residency":
            values, end = _list_values(argv, i)
            kept = [v for v in values if v and v.split("=", 1)[0].strip().replace("-", "_").lower() != comp]
            return argv[:i] + ["--component-residency", *kept, assignment] + argv[end:]
    return argv + ["--component-residency", assignment]


CommandValidator = Callable[[list[str], dict[str, str]], list[Problem]]


def split_command(command: str | list[str]) -> tuple[dict[str, str], list[str]]:
    """A shell line or argv -> (env assignments, argv)."""
    if not isinstance(command, str) and not (isinstance(command, list) and all(isinstance(t, str) for t in command)):
        raise ToolInputError("bad_command", "`command` must be a string or a list of strings.", flag="command")
    try:
        return env_and_argv(command)
    except ValueError as exc:
        raise ToolInputError("bad_command", f"Could not split the command: {exc}.",
                             "Pass the command as a list of arguments, or fix its quoting.", flag="command") from None


def is_sglang_generate(argv: list[str]) -> bool:
    """`sglang generate ...` (the executable may be given by path)."""
    return len(argv) >= 2 and Path(argv[0]).name == "sglang" and argv[1] == "generate"


def not_sglang_problem(argv: list[str] | None = None) -> Problem:
    shown = " ".join(argv[:3])[:80] if argv else ""
    return Problem(code="not_sglang_generate", flag="command",
                   message=f"The command {shown!r} is not an `sglang generate` line, so no improved command was built."
                   if argv else "The command is empty, so no improved command was built.",
                   fix="Pass the `sglang generate ...` command that wrote this log (env assignments may precede it).")


def improve_command(command: str | list[str], changes: list[SuggestedChange],
                    validate: CommandValidator | None = None) -> ImprovedCommand:
    """Apply suggested changes to a command. `validate` (e.g. check_command's rules) may add problems."""
    env, argv = split_command(command)
    if not is_sglang_generate(argv):
        return ImprovedCommand(argv=argv, env=env, command=command_line(argv, env), problems=[not_sglang_problem()])
    applied: list[str] = []
    for change in changes:
        for flag in change.remove:
            if change.add and flag == change.add[0]:
                continue  # setting the flag below replaces it
            argv, changed = _drop_flag(argv, _norm_flag(flag))
            if changed:
                applied.append(f"removed {flag}")
        for flag, values in change.remove_values.items():
            for value in values:
                argv, changed = _drop_list_value(argv, _norm_flag(flag), value)
                if changed:
                    applied.append(f"removed {value} from {flag}")
        if change.add[:1] == ["--component-residency"]:
            argv = _merge_residency(argv, change.add[1])
            applied.append(f"set --component-residency {change.add[1]}")
        elif change.add:
            if _contains(argv, change.add):
                continue
            argv, _ = _drop_flag(argv, _norm_flag(change.add[0]))  # one setting per flag
            argv = argv + change.add
            applied.append("set " + " ".join(change.add))
    problems = validate(argv, env) if validate else []
    return ImprovedCommand(argv=argv, env=env, command=command_line(argv, env), applied=applied, problems=problems)
