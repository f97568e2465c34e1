"""Sessions: `nox -s tests` (the test suite), `nox -s lint`, `nox -s table6` (the main job).

Sessions run in the current Python environment (no per-session virtualenv):
torch is several GB, and the README's install line already put everything there.
"""

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]


@nox.session
def tests(session):
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session):
    session.run("ruff", "check", ".")


@nox.session
def table6(session):
    session.run("python", "-m", "experiments", "run", "table6", *session.posargs)
