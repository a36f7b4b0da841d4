"""test_install.py CMAKE BUILD_DIR - `cmake --install` into a temporary prefix (issue 20 item 7).

  - bin/weft, share/man/man1/weft.1, lib/systemd/system/weft.service and
    share/bash-completion/completions/weft are installed;
  - the installed binary runs and is the build's (same --help);
  - the man page renders with `man -l` (groff where man-db is missing) without
    warnings, and names every option --help names, 'weft stop --timeout' too;
  - the completion, sourced in bash, completes --mod to --model (and --mode),
    --model's values to the models --help lists, and 'weft stop --t' to --timeout.
Exit 0 on success, 1 with the reasons.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

CMAKE, BUILD = sys.argv[1], sys.argv[2]
WANT = ["bin/weft", "share/man/man1/weft.1", "lib/systemd/system/weft.service",
        "share/bash-completion/completions/weft"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def render(page):
    """The page as plain text, as a person reads it: man -l, or groff without man-db."""
    env = dict(os.environ, MANWIDTH="100", LC_ALL="C", MAN_KEEP_FORMATTING="0")
    if shutil.which("man"):
        r = run(["man", "-l", "-P", "cat", page], env=env)
        how = "man -l"
    else:
        r = run(["groff", "-man", "-Tascii", "-ww", "-P-cbou", page], env=env)
        how = "groff"
    assert r.returncode == 0, "%s %s failed: %s" % (how, page, r.stderr)
    assert "warning" not in r.stderr, "%s %s: %s" % (how, page, r.stderr)
    return re.sub(".\b", "", r.stdout), how  # no overstrike bold, whatever the pager settings


def complete(completion, words):
    """What bash completion offers for the command line `words` (the last one is being typed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); '
              'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _weft; printf "%s\\n" "${COMPREPLY[@]}"')
    r = run(["bash", "--norc", "--noprofile", "-c", script, "complete", completion] + words)
    assert r.returncode == 0, "completion of %r failed: %s" % (words, r.stderr)
    return r.stdout.split()


def main():
    bad = []
    with tempfile.TemporaryDirectory(prefix="weft-install-") as prefix:
        r = run([CMAKE, "--install", BUILD, "--prefix", prefix])
        assert r.returncode == 0, "cmake --install failed: %s%s" % (r.stdout, r.stderr)
        for f in WANT:
            if not os.path.isfile(os.path.join(prefix, f)):
                bad.append("not installed: %s" % f)
        if bad:
            return bad
        weft = os.path.join(prefix, "bin/weft")
        assert os.access(weft, os.X_OK), weft
        help_text = run([weft, "--help"]).stdout
        assert help_text == run([os.path.join(BUILD, "weft"), "--help"]).stdout, "installed weft is not the build's"
        flags = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", help_text)))
        assert len(flags) > 30 and "--timeout" in flags, flags

        page, how = render(os.path.join(prefix, "share/man/man1/weft.1"))
        for flag in flags:
            if flag not in page:
                bad.append("the man page (%s) does not name %s" % (how, flag))
        if "weft stop --pidfile FILE [--timeout SEC]" not in page:
            bad.append("the man page has no 'weft stop --pidfile FILE [--timeout SEC]'")
        models = re.findall(r"^  (\S+) +\S", help_text.split("\nmodels:\n", 1)[1], re.M)
        for m in models:
            if not re.search(r"^\s+%s(\s|$)" % m, page.split("\nMODELS\n", 1)[-1], re.M):
                bad.append("the man page's MODELS does not list %s" % m)

        # The unit starts the binary this install put in place, wherever the prefix is.
        unit = os.path.join(prefix, "lib/systemd/system/weft.service")
        execs = re.findall(r"^ExecStart=(\S+)", open(unit).read(), re.M)
        if execs != [weft]:
            bad.append("the unit's ExecStart runs %r, want %r" % (execs, weft))
        elif shutil.which("systemd-analyze"):
            # Documentation=man:weft(1): systemd-analyze looks the page up with man.
            env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man") + ":")
            r = run(["systemd-analyze", "verify", unit], env=env)
            if r.returncode != 0 or r.stderr.strip():
                bad.append("systemd-analyze verify %s: %s%s" % (unit, r.stdout, r.stderr))

        comp = os.path.join(prefix, "share/bash-completion/completions/weft")
        got = complete(comp, ["weft", "--mod"])
        if "--model" not in got or "--mode" not in got:
            bad.append("--mod completes to %r, want --model and --mode" % got)
        got = complete(comp, ["weft", "--model", ""])
        if got != models:
            bad.append("--model completes to %r, want %r" % (got, models))
        got = complete(comp, ["weft", "--poller", "e"])
        if got != ["epoll"]:
            bad.append("--poller e completes to %r" % got)
        got = complete(comp, ["weft", "stop", "--t"])
        if got != ["--timeout"]:
            bad.append("weft stop --t completes to %r" % got)
        got = complete(comp, ["weft", "--"])
        missing = [f for f in flags if f not in got and f not in ("--timeout",)]
        if missing:
            bad.append("-- does not complete to %s" % missing)
        print("measured: installed %s; man page rendered by %s names %d flags; completion checked"
              % (", ".join(WANT), how, len(flags)))
    return bad


if __name__ == "__main__":
    problems = main()
    for p in problems:
        print("FAIL:", p)
    sys.exit(1 if problems else 0)
