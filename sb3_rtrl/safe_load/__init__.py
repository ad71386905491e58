"""
Loading saved models without running code from the file.

SB3 stores what JSON cannot hold (spaces, classes, schedules, policy kwargs) as pickles, and unpickling
runs code. The algorithms' ``save`` therefore adds ``sb3_rtrl.json`` to the zip: a plain description of those
entries (:mod:`~sb3_rtrl.safe_load.describe`). :func:`load_model` rebuilds them from it and hands them to SB3 as
``custom_objects``, which SB3 then does not unpickle; weights are read by ``torch.load(weights_only=True)``.

The description is untrusted input. Rebuilding it (:mod:`~sb3_rtrl.safe_load.rebuild`) imports nothing and looks up
no attribute: a class is taken only from an exact allowlist keyed by its full name
(:mod:`~sb3_rtrl.safe_load.allowlist`; :func:`register_safe_class` extends it from the user's own code), every value
is checked against the annotation of the parameter it will be passed to (a class must be an allowlisted subclass of
what the parameter takes; anything typed ``Any`` must be plain data), and spaces and schedules are built only from
known types with validated fields. Whatever fails is refused with :class:`UntrustedContentError`, naming the entry.

Every entry of the file's ``data`` is checked too, the plain JSON ones included: only the entries this project's
``save`` writes are accepted, each as the type it has there, and all of them reach SB3 as ``custom_objects``, so
SB3 uses nothing from the file unchecked (an ``env`` entry, which SB3 would pass to ``gym.make``, is refused).
Reading is bounded (:class:`LoadLimits`) and a malformed file is named with its member
(:class:`ModelFileError`, :mod:`~sb3_rtrl.safe_load.load`).
"""

from sb3_rtrl.safe_load.allowlist import class_path, register_safe_class, safe_classes
from sb3_rtrl.safe_load.describe import ALGORITHM_ENTRY, DESCRIPTION_FILE, add_description, describe
from sb3_rtrl.safe_load.errors import DEFAULT_LIMITS, LoadLimits, ModelFileError, UntrustedContentError, load_limits
from sb3_rtrl.safe_load.load import (
    TRUST_ENV_VAR,
    algorithm_class,
    check_algorithm,
    load_model,
    safe_custom_objects,
    saved_algorithm,
    trust_from_environment,
)
from sb3_rtrl.safe_load.rebuild import (
    ENTRY_TYPES,
    PLAIN_ENTRY_TYPES,
    check_data_entries,
    constructor_types,
    rebuild,
    rebuild_entries,
)

__all__ = [
    "ALGORITHM_ENTRY",
    "DEFAULT_LIMITS",
    "DESCRIPTION_FILE",
    "ENTRY_TYPES",
    "PLAIN_ENTRY_TYPES",
    "TRUST_ENV_VAR",
    "LoadLimits",
    "ModelFileError",
    "UntrustedContentError",
    "add_description",
    "algorithm_class",
    "check_algorithm",
    "check_data_entries",
    "class_path",
    "constructor_types",
    "describe",
    "load_limits",
    "load_model",
    "rebuild",
    "rebuild_entries",
    "register_safe_class",
    "safe_classes",
    "safe_custom_objects",
    "saved_algorithm",
    "trust_from_environment",
]
