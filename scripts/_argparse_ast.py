"""Read the argparse flags a function registers, from source only (never imports the code it reads).

A tiny abstract interpreter over `ast`: it follows a parser object through function calls
(`ServerArgs.add_cli_args(parser)`, nested helpers, class methods found through imports and base
classes), evaluates the constant parts (f-strings, module constants, dataclass defaults, simple
`if`/`for`) and records every `parser.add_argument(...)` it reaches. What it cannot evaluate becomes
`Unknown` rather than a guess; an `if` with an unknown test runs both branches.

Used by build_release_table.py; kept separate so the table script stays readable.
"""

from __future__ import annotations

import ast
import zipfile
from dataclasses import dataclass
from typing import Any


class Unknown:
    """A value the interpreter cannot know statically; keeps its source text for reports."""

    def __init__(self, src: str = "?"):
        self.src = src

    def __repr__(self) -> str:
        return f"Unknown({self.src})"


@dataclass
class ParserRef:
    """The parser (or argument group) whose flags we collect."""

    name: str = "parser"


@dataclass
class ClassRef:
    module: "Module"
    node: ast.ClassDef


@dataclass
class FuncRef:
    module: "Module"
    node: ast.FunctionDef
    bound_cls: ClassRef | None = None
    closure: dict | None = None


@dataclass
class ModuleRef:
    module: "Module"


@dataclass
class Action:
    """One add_argument call as argparse would see it."""

    options: list[str]
    kwargs: dict[str, Any]
    file: str
    line: int
    conditional: bool = False


SUPPRESS = "==SUPPRESS=="


class Wheel:
    """Python sources of one sglang wheel, read straight from the zip."""

    def __init__(self, path: str):
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())
        self._modules: dict[str, Module | None] = {}

    def source(self, relpath: str) -> str | None:
        return self.zip.read(relpath).decode("utf-8", "replace") if relpath in self.names else None

    def module(self, dotted: str) -> "Module | None":
        if dotted not in self._modules:
            rel = dotted.replace(".", "/")
            mod = None
            for cand in (f"{rel}.py", f"{rel}/__init__.py"):
                if cand in self.names:
                    mod = Module(self, dotted, cand, ast.parse(self.source(cand)), cand.endswith("__init__.py"))
                    break
            self._modules[dotted] = mod
        return self._modules[dotted]

    def py_files(self, prefix: str) -> list[str]:
        return sorted(n for n in self.names if n.startswith(prefix) and n.endswith(".py"))


class Module:
    def __init__(self, wheel: Wheel, name: str, path: str, tree: ast.Module, is_pkg: bool):
        self.wheel, self.name, self.path, self.tree, self.is_pkg = wheel, name, path, tree, is_pkg
        self.defs: dict[str, ast.AST] = {}
        self.imports: dict[str, tuple[str, str | None]] = {}  # local name -> (module, attr or None)
        for node in tree.body:
            self._index(node)

    def _index(self, node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    self.defs[t.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            self.defs[node.target.id] = node.value
        elif isinstance(node, ast.ImportFrom):
            base = self._absolute(node.module, node.level)
            for alias in node.names:
                self.imports[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                self.imports[alias.asname or alias.name.split(".")[0]] = (alias.name if alias.asname else alias.name.split(".")[0], None)
        elif isinstance(node, (ast.If, ast.Try)):
            for child in node.body:
                self._index(child)

    def _absolute(self, module: str | None, level: int) -> str:
        if not level:
            return module or ""
        parts = self.name.split(".")
        if not self.is_pkg:
            parts = parts[:-1]
        parts = parts[: len(parts) - (level - 1)]
        return ".".join(parts + ([module] if module else []))


class Interpreter:
    def __init__(self, wheel: Wheel):
        self.wheel = wheel
        self.actions: list[Action] = []
        self.unresolved_calls: list[str] = []
        self._depth = 0
        self._cond = 0

    # ---- name resolution -------------------------------------------------------------
    def lookup_global(self, module: Module, name: str, seen: frozenset = frozenset()) -> Any:
        key = (module.name, name)
        if key in seen:
            return Unknown(name)
        seen = seen | {key}
        if name in module.defs:
            node = module.defs[name]
            if isinstance(node, ast.ClassDef):
                return ClassRef(module, node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return FuncRef(module, node)
            return self.eval(node, {}, module, seen)
        if name in module.imports:
            target, attr = module.imports[name]
            if attr is None:
                mod = self.wheel.module(target)
                return ModuleRef(mod) if mod else Unknown(name)
            mod = self.wheel.module(target)
            if mod is None:
                return Unknown(name)
            sub = self.wheel.module(f"{target}.{attr}")
            if attr not in mod.defs and attr not in mod.imports and sub is not None:
                return ModuleRef(sub)
            return self.lookup_global(mod, attr, seen)
        return Unknown(name)

    def class_attr(self, cls: ClassRef, name: str, seen: frozenset = frozenset()) -> Any:
        for node in cls.node.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return FuncRef(cls.module, node, bound_cls=cls)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                return self._field_default(node.value, cls.module, seen)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return self._field_default(node.value, cls.module, seen)
        for base in cls.node.bases:
            ref = self.eval(base, {}, cls.module, seen)
            if isinstance(ref, ClassRef):
                found = self.class_attr(ref, name, seen)
                if not (isinstance(found, Unknown) and found.src == f"missing:{name}"):
                    return found
        return Unknown(f"missing:{name}")

    def _field_default(self, value: ast.AST | None, module: Module, seen: frozenset) -> Any:
        if value is None:
            return Unknown("no default")
        if isinstance(value, ast.Call) and _callee_name(value) == "field":
            for kw in value.keywords:
                if kw.arg == "default":
                    return self.eval(kw.value, {}, module, seen)
                if kw.arg == "default_factory":
                    fac = ast.unparse(kw.value)
                    return {"list": [], "dict": {}, "set": []}.get(fac, Unknown(f"factory {fac}"))
            return Unknown("field()")
        return self.eval(value, {}, module, seen)

    def enum_values(self, cls: ClassRef) -> list[Any]:
        vals = []
        for node in cls.node.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                vals.append(node.value.value)
        return vals

    # ---- expressions -----------------------------------------------------------------
    def eval(self, node: ast.AST, env: dict, module: Module, seen: frozenset = frozenset()) -> Any:
        try:
            return self._eval(node, env, module, seen)
        except RecursionError:
            return Unknown(ast.unparse(node))

    def _eval(self, node, env, module, seen):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.JoinedStr):
            out = []
            for part in node.values:
                v = self.eval(part.value, env, module, seen) if isinstance(part, ast.FormattedValue) else part.value
                if isinstance(v, Unknown):
                    return Unknown(ast.unparse(node))
                out.append(str(v))
            return "".join(out)
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            return self.lookup_global(module, node.id, seen)
        if isinstance(node, ast.Attribute):
            if node.attr == "SUPPRESS":
                return SUPPRESS
            base = self.eval(node.value, env, module, seen)
            if isinstance(base, ClassRef):
                return self.class_attr(base, node.attr, seen)
            if isinstance(base, ModuleRef):
                return self.lookup_global(base.module, node.attr, seen)
            if node.attr == "value" and isinstance(base, (str, int, float)):
                return base  # enum members are approximated by their value
            if isinstance(base, ParserRef):
                return ("parser_attr", node.attr)
            return Unknown(ast.unparse(node))
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    v = self.eval(elt.value, env, module, seen)
                    if isinstance(v, (list, tuple)):
                        items.extend(v)
                        continue
                    return Unknown(ast.unparse(node))
                items.append(self.eval(elt, env, module, seen))
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    sub = self.eval(v, env, module, seen)
                    if isinstance(sub, dict):
                        out.update(sub)
                    continue
                kk = self.eval(k, env, module, seen)
                if isinstance(kk, Unknown):
                    return Unknown(ast.unparse(node))
                out[kk] = self.eval(v, env, module, seen)
            return out
        if isinstance(node, ast.BinOp):
            a, b = self.eval(node.left, env, module, seen), self.eval(node.right, env, module, seen)
            if isinstance(a, Unknown) or isinstance(b, Unknown):
                return Unknown(ast.unparse(node))
            try:
                if isinstance(node.op, ast.Add):
                    if isinstance(a, tuple) and isinstance(b, list):
                        return list(a) + b
                    return a + b
                if isinstance(node.op, ast.Mod):
                    return a % b
                if isinstance(node.op, ast.Mult):
                    return a * b
            except Exception:
                pass
            return Unknown(ast.unparse(node))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = self.eval(node.left, env, module, seen), self.eval(node.comparators[0], env, module, seen)
            if isinstance(a, Unknown) or isinstance(b, Unknown):
                return Unknown(ast.unparse(node))
            op = node.ops[0]
            try:
                return {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.In: lambda: a in b,
                        ast.NotIn: lambda: a not in b, ast.Is: lambda: a is b, ast.IsNot: lambda: a is not b}[type(op)]()
            except Exception:
                return Unknown(ast.unparse(node))
        if isinstance(node, ast.BoolOp):
            vals = [self.eval(v, env, module, seen) for v in node.values]
            if any(isinstance(v, Unknown) for v in vals):
                return Unknown(ast.unparse(node))
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            v = self.eval(node.operand, env, module, seen)
            return Unknown(ast.unparse(node)) if isinstance(v, Unknown) else (not v)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = self.eval(node.operand, env, module, seen)
            return -v if isinstance(v, (int, float)) else Unknown(ast.unparse(node))
        if isinstance(node, ast.IfExp):
            t = self.eval(node.test, env, module, seen)
            if isinstance(t, Unknown):
                return Unknown(ast.unparse(node))
            return self.eval(node.body if t else node.orelse, env, module, seen)
        if isinstance(node, ast.Call):
            return self._eval_call(node, env, module, seen)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1 and not node.generators[0].ifs:
            gen = node.generators[0]
            it = self.eval(gen.iter, env, module, seen)
            if isinstance(it, ClassRef):
                it = self.enum_values(it)
            if isinstance(it, (list, tuple, dict)) and isinstance(gen.target, ast.Name):
                out = [self.eval(node.elt, {**env, gen.target.id: x}, module, seen) for x in it]
                return Unknown(ast.unparse(node)) if any(isinstance(x, Unknown) for x in out) else out
        return Unknown(ast.unparse(node))

    def _eval_call(self, node: ast.Call, env, module, seen):
        name = _callee_name(node)
        args = [self.eval(a, env, module, seen) for a in node.args if not isinstance(a, ast.Starred)]
        if name in ("list", "tuple", "sorted", "set") and len(args) == 1:
            a = args[0]
            if isinstance(a, ClassRef):
                a = self.enum_values(a)
            if isinstance(a, dict):
                a = list(a)
            if isinstance(a, (list, tuple)):
                return sorted(a) if name == "sorted" else list(a)
            return Unknown(ast.unparse(node))
        if isinstance(node.func, ast.Attribute):
            base = self.eval(node.func.value, env, module, seen)
            if isinstance(base, ClassRef) and node.func.attr in ("choices", "values", "value_list", "list"):
                return self.enum_values(base)
            if isinstance(base, dict) and node.func.attr == "keys":
                return list(base)
            if isinstance(base, dict) and node.func.attr == "setdefault" and len(args) == 2:
                return base.setdefault(args[0], args[1])
            if isinstance(base, str) and node.func.attr in ("replace", "strip", "lower", "upper", "format", "join"):
                if all(not isinstance(a, Unknown) for a in args):
                    try:
                        return getattr(base, node.func.attr)(*args)
                    except Exception:
                        pass
        return Unknown(ast.unparse(node))

    # ---- statements ------------------------------------------------------------------
    def run_function(self, ref: FuncRef, args: list, kwargs: dict) -> Any:
        if self._depth > 12:
            return None
        fn = ref.node
        env: dict = dict(ref.closure or {})
        params = list(fn.args.posonlyargs) + list(fn.args.args)
        decorators = {ast.unparse(d) for d in fn.decorator_list}
        if ref.bound_cls is not None and "staticmethod" not in decorators and params:
            env[params[0].arg] = ref.bound_cls  # cls / self
            params = params[1:]
        defaults = [None] * (len(params) - len(fn.args.defaults)) + list(fn.args.defaults)
        for i, p in enumerate(params):
            if i < len(args):
                env[p.arg] = args[i]
            elif p.arg in kwargs:
                env[p.arg] = kwargs.pop(p.arg)
            elif defaults[i] is not None:
                env[p.arg] = self.eval(defaults[i], env, ref.module)
            else:
                env[p.arg] = Unknown(p.arg)
        for p, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults):
            env[p.arg] = kwargs.pop(p.arg) if p.arg in kwargs else (self.eval(d, env, ref.module) if d else Unknown(p.arg))
        if fn.args.vararg:
            env[fn.args.vararg.arg] = tuple(args[len(params):])
        if fn.args.kwarg:
            env[fn.args.kwarg.arg] = dict(kwargs)
        self._depth += 1
        try:
            return self.run_body(fn.body, env, ref.module)
        finally:
            self._depth -= 1

    def run_body(self, body: list[ast.stmt], env: dict, module: Module) -> Any:
        for stmt in body:
            if isinstance(stmt, ast.Return):
                return self.exec_expr(stmt.value, env, module) if stmt.value else None
            self.run_stmt(stmt, env, module)
        return None

    def run_stmt(self, stmt: ast.stmt, env: dict, module: Module) -> None:
        if isinstance(stmt, ast.Expr):
            self.exec_expr(stmt.value, env, module)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            if stmt.value is None:
                return
            value = self.exec_expr(stmt.value, env, module)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    env[t.id] = value
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            env[stmt.name] = FuncRef(module, stmt, closure=env)
        elif isinstance(stmt, ast.If):
            test = self.eval(stmt.test, env, module)
            if isinstance(test, Unknown):
                self._cond += 1
                self.run_body(stmt.body, env, module)
                self.run_body(stmt.orelse, env, module)
                self._cond -= 1
            else:
                self.run_body(stmt.body if test else stmt.orelse, env, module)
        elif isinstance(stmt, ast.For):
            it = self.eval(stmt.iter, env, module)
            if isinstance(it, dict):
                it = list(it)
            if isinstance(it, (list, tuple)):
                for item in it:
                    self._bind(stmt.target, item, env)
                    self.run_body(stmt.body, env, module)
            else:
                self.unresolved_calls.append(f"{module.path}:{stmt.lineno}: for over {ast.unparse(stmt.iter)}")
        elif isinstance(stmt, (ast.With, ast.Try)):
            self.run_body(stmt.body, env, module)

    def _bind(self, target: ast.AST, value: Any, env: dict) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (list, tuple)) and len(value) == len(target.elts):
            for t, v in zip(target.elts, value):
                self._bind(t, v, env)

    def exec_expr(self, node: ast.AST, env: dict, module: Module) -> Any:
        """Evaluate an expression that may have side effects on the parser."""
        if not isinstance(node, ast.Call):
            return self.eval(node, env, module)
        args: list = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                v = self.eval(a.value, env, module)
                args.extend(v if isinstance(v, (list, tuple)) else [Unknown(ast.unparse(a))])
            else:
                args.append(self.eval(a, env, module))
        kwargs: dict = {}
        for kw in node.keywords:
            v = self.eval(kw.value, env, module)
            if kw.arg is None:
                if isinstance(v, dict):
                    kwargs.update(v)
            else:
                kwargs[kw.arg] = v
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self.eval(func.value, env, module)
            if isinstance(receiver, ParserRef):
                if func.attr == "add_argument":
                    self.actions.append(Action([a for a in args if isinstance(a, str)], kwargs, module.path,
                                               node.lineno, conditional=self._cond > 0))
                    return None
                if func.attr in ("add_argument_group", "add_mutually_exclusive_group"):
                    return receiver
                return None
        callee = self.eval(func, env, module)
        passes_parser = any(isinstance(a, ParserRef) for a in [*args, *kwargs.values()])
        if isinstance(callee, FuncRef):
            if passes_parser or callee.closure is not None:
                result = self.run_function(callee, args, kwargs)
                return result if result is not None else next((a for a in args if isinstance(a, ParserRef)), None)
            return self.eval(node, env, module)
        if passes_parser:
            self.unresolved_calls.append(f"{module.path}:{node.lineno}: {ast.unparse(func)}(parser)")
            return next(a for a in args if isinstance(a, ParserRef))
        return self.eval(node, env, module)


def _callee_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def collect_flags(wheel: Wheel, module_name: str, function: str) -> tuple[list[Action], list[str]]:
    """Every add_argument reached from `module.function(parser)`; plus the calls it could not follow."""
    mod = wheel.module(module_name)
    if mod is None or function not in mod.defs:
        raise LookupError(f"{module_name}.{function} not found in wheel")
    interp = Interpreter(wheel)
    interp.run_function(FuncRef(mod, mod.defs[function]), [ParserRef()], {})
    return interp.actions, interp.unresolved_calls
