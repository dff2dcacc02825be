"""Stand-in for ansible-test's get-pip bootstrap script.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com, which
these machines cannot reach.  tests/run copies this file to
~/.ansible/test/cache/get_pip_<version>.py: it bootstraps pip with the
interpreter's own ensurepip, then installs the requested pip from the
configured index (PyPI or its mirror).
"""

import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if not arg.startswith("--") or arg in ("--upgrade", "--force-reinstall")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--cert",
                       "/etc/ssl/certs/ca-certificates.crt"] + args)
