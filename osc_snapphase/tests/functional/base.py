#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""Base class of the functional tests: the real ``openstack`` executable
run as a subprocess against the bundled simulator on 127.0.0.1."""

import signal
import time

import testtools

from osc_snapphase.tests import cli
from osc_snapphase.tests import fixture

OPENSTACK = cli.executable()
# The simulator's request key of one server's GET (what a watch polls).
GET_SERVER = 'GET /compute/v2.1/servers/{id}'

# Short but realistic phases: each longer than two fast polls.
DURATIONS = {
    'pending': 0.3,
    'snapshot': 1.5,
    'pending_upload': 0.8,
    'uploading': 3.0,
}


Result = cli.Result


class TestCase(testtools.TestCase):
    """Starts a simulator per test; runs ``openstack`` against it."""

    durations = DURATIONS
    token_lifetime = None

    def setUp(self):
        super().setUp()
        self.sim = self.useFixture(fixture.SimulatorFixture(
            durations=dict(self.durations),
            token_lifetime=self.token_lifetime))
        self.control = self.sim.control

    def environ(self, cloud=None, env=None):
        # As a user's shell has it: no OS_* left over, and stdout buffered
        # as Python buffers a pipe (PYTHONUNBUFFERED would hide a missing
        # flush of live output).
        return cli.environ(extra=dict(self.sim.cloud_env(cloud),
                                      **(env or {})))

    def openstack(self, *args, cloud=None, expect=0, env=None,
                  timeout=120):
        """Run openstack; assert its exit status (None: any)."""
        result = cli.run(args, self.environ(cloud, env), timeout=timeout)
        self.check_result(result, expect)
        return result

    def start(self, *args, cloud=None, env=None):
        """Start openstack in the background; finish() collects it."""
        proc = cli.start(args, self.environ(cloud, env))
        self.addCleanup(cli.reap, proc)
        return proc

    def interrupt(self, proc, signum=signal.SIGINT):
        proc.send_signal(signum)

    def finish(self, proc, expect=0, timeout=120):
        result = cli.finish(proc, timeout)
        self.check_result(result, expect)
        return result

    def check_result(self, result, expect):
        for secret in self.control.secret_values():
            self.assertNotIn(secret, result.stdout + result.stderr,
                             'a secret leaked into the output')
        self.assertNotIn('Traceback', result.stderr)
        if expect is not None and result.returncode != expect:
            self.fail('openstack %s: exit %d, expected %d\nstdout:\n%s\n'
                      'stderr:\n%s' % (' '.join(result.args),
                                       result.returncode, expect,
                                       result.stdout, result.stderr))

    _reap = staticmethod(cli.reap)

    def create_server(self, name='vm1', **fields):
        return self.control.create_server(name, **fields)

    def task_log(self, server_id):
        """The simulator's own record of task-state changes of a server."""
        return [entry for entry in self.control.log(resource_id=server_id)
                if entry['resource'] == 'server'
                and entry['field'] == 'task_state']

    # -- helpers for tests that watch a running openstack ------------------

    def read_line(self, proc, timeout=30, stream='stdout'):
        """Read one line of a start()ed proc's stdout as it comes.

        Reads the file descriptor byte by byte (no buffering), so that
        finish() still gets the rest; the line is kept for finish() too.
        Returns the line, or '' at end of output. stream='stderr' reads
        stderr instead.
        """
        try:
            return cli.read_line(proc, timeout, stream)
        except TimeoutError as exc:
            self.fail(str(exc))

    def wait_requests(self, key, count=1, timeout=30):
        """Wait for ``count`` requests of a key; return them.

        The key as the simulator counts it, e.g.
        'GET /compute/v2.1/servers/{id}'.
        """
        deadline = time.monotonic() + timeout
        while True:
            requests = [r for r in self.control.requests()['requests']
                        if r['key'] == key]
            if len(requests) >= count:
                return requests
            if time.monotonic() > deadline:
                self.fail('fewer than %d requests %s within %ss'
                          % (count, key, timeout))
            time.sleep(0.05)

    # -- waiting for events, never for a fixed time -----------------------

    def wait_cli(self, proc, check, what, timeout=300):
        """Wait until check() is true while the CLI runs; return it.

        Fails at once, with the CLI's output, if the CLI has exited.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if proc.poll() is not None:
                stdout, stderr = proc.communicate(timeout=60)
                self.fail('openstack exited with %s before %s\nstdout:\n%s'
                          '\nstderr:\n%s'
                          % (proc.returncode, what, stdout, stderr))
            if time.monotonic() > deadline:
                self.fail('no %s within %ss' % (what, timeout))
            time.sleep(0.05)

    def hold(self, step, server=None):
        """Stop operations at ``step`` until released.

        See the simulator's /_sim/hold; everything is released at the end
        of the test in any case.
        """
        self.control.hold(step, server=server)
        self.addCleanup(self._release_all)

    def _release_all(self):
        try:
            self.control.release()
        except Exception:   # the simulator may already be gone
            pass

    def request_count(self, key):
        return sum(1 for r in self.control.requests()['requests']
                   if r['key'] == key)

    def release_after_polls(self, step, key=None, polls=3, server=None,
                            timeout=60):
        """Release ``step`` once the CLI has seen it held.

        Waits until an operation is held at ``step`` and the CLI has made
        ``polls`` more requests of ``key`` (default: GET of one server),
        then releases it. The log has a request when it arrives, and the
        CLI's own lookup of the server may be the first one counted: the
        default of 3 makes sure a poll has been answered in the step.
        Returns the release time (time.time()).
        """
        key = key or GET_SERVER
        self.control.wait_held(step, server=server, timeout=timeout)
        self.wait_requests(key, self.request_count(key) + polls,
                           timeout=timeout)
        released = time.time()
        self.control.release(step, server=server)
        return released

    def image_create(self, server, name='snap', *extra, backup=False):
        """Start an image (or daily backup) of a server with the CLI.

        Returns the image as the CLI printed it (a dict).
        """
        if backup:
            args = ['server', 'backup', 'create', server, '--name', name,
                    '--type', 'daily', '--rotate', '2']
        else:
            args = ['server', 'image', 'create', server, '--name', name]
        return self.openstack(*(args + list(extra) + ['-f', 'json'])).json()

    def changed_at(self, server_id, old, new=None):
        """Time of a server's first task-state change out of ``old``.

        Wall clock (time.time()) as the simulator logged it; the change
        must go into ``new`` if given.
        """
        for entry in self.task_log(server_id):
            if entry['old'] == old and (new is None or entry['new'] == new):
                return entry['time']
        self.fail('no task-state change of %s out of %s (log: %s)'
                  % (server_id, old, self.task_log(server_id)))

    def openstack_timed(self, *args, expect=0, env=None, timeout=120):
        """Run openstack like openstack(); also note when stdout was done.

        The Result gets ``output_at``: the wall-clock time when stdout
        first held a complete JSON document (for -f json), else when its
        last byte came; this excludes the interpreter's exit.
        """
        return self.finish_timed(self.start(*args, env=env), expect=expect,
                                 timeout=timeout)

    def finish_timed(self, proc, expect=0, timeout=120):
        """Collect a start()ed proc, noting ``output_at``.

        As openstack_timed() does, for a proc the test acted on meanwhile.
        """
        try:
            result = cli.finish_timed(proc, timeout)
        except TimeoutError as exc:
            self.fail(str(exc))
        self.check_result(result, expect)
        return result
