"""weft_models.py - servers/models.def, the one list of weft's models, for Python.

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import weft_models
    weft_models.models()    # [Model(name, single_loop, bench_args), ...] in the file's order
    weft_models.variants()  # [Variant(name, model, args, tsan), ...]

Args are lists of words (shlex). The format is explained at the top of
servers/models.def; this reads only its MODEL( and VARIANT( lines, like
tests/CMakeLists.txt does. Standard library only.
"""
import collections
import os
import re
import shlex

DEF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "servers", "models.def")

Model = collections.namedtuple("Model", "name single_loop bench_args")
Variant = collections.namedtuple("Variant", "name model args tsan")

_MODEL = re.compile(r'^MODEL\(([a-z0-9_]+), *(SINGLE_LOOP|THREADED), *"([^"]*)"\)$')
_VARIANT = re.compile(r'^VARIANT\(([a-z0-9_]+), *"([^"]*)", *"([^"]*)", *(TSAN|NO_TSAN)\)$')


def _read(path):
    models, variants = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.startswith(("MODEL(", "VARIANT(")):
                continue
            m = _MODEL.match(line) or _VARIANT.match(line)
            if not m:
                raise ValueError("%s:%d: cannot read %r (see the comment at its top)" % (path, n, line))
            if line.startswith("MODEL("):
                models.append(Model(m.group(1), m.group(2) == "SINGLE_LOOP", shlex.split(m.group(3))))
            else:
                model, name, extra, tsan = m.groups()
                if model not in [x.name for x in models]:
                    raise ValueError("%s:%d: VARIANT of %s before or without its MODEL" % (path, n, model))
                variants.append(Variant(name, model, ["--model", model] + shlex.split(extra), tsan == "TSAN"))
    if not models or not variants:
        raise ValueError("%s: no MODEL or no VARIANT lines" % path)
    return models, variants


def models(path=DEF):
    return _read(path)[0]


def variants(path=DEF):
    return _read(path)[1]


if __name__ == "__main__":
    # A plain listing, to compare with what the other readers derive.
    for m in models():
        print("model %-8s %s bench: %s" % (m.name, "single-loop" if m.single_loop else "threaded",
                                           " ".join(["--model", m.name] + m.bench_args)))
    for v in variants():
        print("variant %-14s %s%s" % (v.name, " ".join(v.args), "  [tsan]" if v.tsan else ""))
