"""The method registry: each method declares, in one `Method` record next to its code, its chain of training stages
(GADN Figure 1; style-space Sections 3-4), its network builder, its serving module and its evaluator. The training
loop, checkpoints, export and evaluation look a method up here instead of switching on its name.

Parts are given as objects or as "module:attribute" strings imported on first use, so one method never loads the
other's code. The built-in methods register when their package is imported (`tf_gadn/gadn/__init__.py`,
`tf_gadn/style_space/__init__.py`); this module imports those packages the first time a method or stage is looked up.
Adding a method is one package plus one `register(Method(...))` call (BUILD.md, "Architecture").
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

BUILTIN_PACKAGES = ("tf_gadn.gadn", "tf_gadn.style_space", "tf_gadn.stargan")


def resolve(part: Any) -> Any:
    """The object a "module:attribute" string names (imported now), or the object itself."""
    if not isinstance(part, str):
        return part
    module, _, attribute = part.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclasses.dataclass(frozen=True)
class Method:
    """What the shared layers need to know about a method.

    Attributes:
        name: the value of `--method`.
        stages: stage name -> Stage subclass (or "module:Class"), in training order; a later stage inherits from the
            earlier ones (Stage.INHERITS). Stage names are unique over all methods (they name model_dir folders).
        networks: `build_networks(config, num_artists, names=None) -> {name: network}`, every network a checkpoint
            of the method can hold (export and evaluation rebuild a run from it).
        serving: the `tf_gadn.serving.export.ServingModule` subclass that exports a trained run, or None.
        evaluator: `evaluate(model_dir, compare_model_dir, data_dir, out_dir, through_stage) -> str` (the report
            `python -m tf_gadn.evaluate` prints), or None.
        transfer: `transfer_model(model_dir, data_dir) -> tf_gadn.evaluation.transfer_eval.TransferModel`, the
            trained run as the shared transfer report sees it on the artists of `data_dir` (`python -m
            tf_gadn.compare` scores every method through it on the same pairs), or None.
        configure: `configure(config, model_dir) -> Config`, the run's config with the values its own earlier stages
            chose filled in (the style space's `--d_style=0`: the pruning rule's choice), or None (nothing to fill).
    """

    name: str
    stages: dict[str, Any]
    networks: Any
    serving: Any = None
    evaluator: Any = None
    transfer: Any = None
    configure: Any = None

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(self.stages)

    def stage_class(self, stage: str):
        return resolve(self.stages[stage])

    def build_networks(self, config, num_artists: int, names=None) -> dict:
        return resolve(self.networks)(config, num_artists, names)

    def configured(self, config, model_dir: str):
        """`config` as the run at model_dir trains and is read: see `configure`."""
        return config if self.configure is None else resolve(self.configure)(config, model_dir)

    def serving_module(self, config, artists, networks, model_dir):
        if self.serving is None:
            raise ValueError(f"method {self.name!r} has no serving module")
        return resolve(self.serving)(config, artists, networks, model_dir)

    def transfer_model(self, model_dir: str, data_dir: str):
        if self.transfer is None:
            raise ValueError(f"method {self.name!r} has no transfer model")
        return resolve(self.transfer)(model_dir, data_dir)

    def evaluate(self, model_dir: str, **options) -> str:
        if self.evaluator is None:
            raise ValueError(f"method {self.name!r} has no evaluator")
        return resolve(self.evaluator)(model_dir, **options)


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Adds a method (returned, so a package can keep it as `METHOD = register(Method(...))`)."""
    _load_builtins()  # a package being imported is already in sys.modules: this never recurses
    taken = {
        stage: other.name
        for other in _METHODS.values()
        if other.name != method.name
        for stage in other.stages
    }
    clash = sorted(set(method.stages) & set(taken))
    if clash:
        raise ValueError(
            f"stage name(s) {clash} of method {method.name!r} already belong to another method"
        )
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Removes a method (tests register toy methods and take them away again)."""
    _METHODS.pop(name, None)


def _load_builtins() -> None:
    for package in BUILTIN_PACKAGES:
        importlib.import_module(package)


def methods() -> dict[str, Method]:
    _load_builtins()
    return dict(_METHODS)


def method(name: str) -> Method:
    known = methods()
    if name not in known:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(known)}")
    return known[name]


def chains() -> dict[str, tuple[str, ...]]:
    """Method name -> its stage names in training order."""
    return {name: m.chain for name, m in methods().items()}


def stage_class(name: str):
    """The Stage subclass registered under `name` (imported lazily so one method never needs the other's code)."""
    for m in methods().values():
        if name in m.stages:
            return m.stage_class(name)
    known = [stage for m in methods().values() for stage in m.stages]
    raise ValueError(f"unknown stage {name!r}; known: {', '.join(known)}")


def stages_to_run(method_name: str, stage: str) -> tuple[str, ...]:
    chain = method(method_name).chain
    if stage == "all":
        return chain
    if stage not in chain:
        raise ValueError(
            f"stage {stage!r} is not part of method {method_name!r} ({', '.join(chain)})"
        )
    return (stage,)
