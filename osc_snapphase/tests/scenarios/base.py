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

"""The one base class of both functional suites, with the one CLI runner.

:class:`CLITestCase` runs the real ``openstack`` (through
:mod:`osc_snapphase.tests.cli`) and declares the cloud interface that the
scenarios use; the simulator's base (``tests/functional/base.py``) and the
real Nova's (``tests/functional_nova/base.py``) implement it.

Steps of an image-create, as the scenarios name them (each cloud maps them
to its own): ``pending`` (``image_snapshot_pending``; a backup has no such
step in the simulator, hold ``snapshot`` instead), ``snapshot``
(``image_snapshot`` or ``image_backup``), ``pending_upload``
(``image_pending_upload``) and ``upload`` (``image_uploading``, the image
``saving``: with the default order the disk capture is proven then).
Failures: ``error`` (a driver error: the task state reverts and the image
is deleted), ``not_running`` (Nova swallows InstanceNotRunning: the image
is deleted, the task state stays).
"""

import signal
import time

import testtools

from osc_snapphase.tests import cli

#: A generous wait for any event: a CLI start can take minutes on a
#: machine with a load average of 30.
WAIT = 240.0
STEPS = ('pending', 'snapshot', 'pending_upload', 'upload')
FAILURES = ('error', 'not_running')


def load_failures(result):
    """The lines of a Result that say a command or hook did not load."""
    return [line for line in result.stderr.splitlines()
            if line.startswith(('Could not load ', 'Exception raised: ',
                                'Unknown command'))] + [
        line for line in result.stdout.splitlines()
        if 'is not an openstack command' in line]


class CLITestCase(testtools.TestCase):
    """Runs ``openstack`` against a cloud that the subclass provides.

    Subclasses implement :meth:`environ` and the cloud interface below
    (``boot`` ... ``api_get``).
    """

    #: Default timeout of one openstack run (seconds): it includes a
    #: start of the CLI.
    cli_timeout = WAIT

    # -- the one runner ------------------------------------------------------

    def environ(self, cloud=None, env=None):
        """The environment of an openstack run against ``cloud``."""
        raise NotImplementedError

    def check_result(self, result, expect):
        """Fail on an unexpected exit status (None: any) or a traceback.

        A plugin that did not load is a failure whatever the test expected
        (it may expect exit 1 or 2, which these give too): a module of it
        that fails to import (stevedore's "Could not load '<entry point>':
        <error>" on stderr; the command is then unknown, exit 2, or the
        hook missing), a command that is not there at all, as when the
        plugin is not installed (cliff's "'<command>' is not an openstack
        command" on stdout, exit 2; "Unknown command" on stderr in older
        cliff), or an error outside any command (osc-lib's "Exception
        raised: <message>" on stderr, exit 1).
        """
        for line in load_failures(result):
            self.fail('the plugin did not load: %s\n%r' % (line, result))
        self.assertNotIn('Traceback', result.stderr, result)
        if expect is not None and result.returncode != expect:
            self.fail('openstack %s: exit %s, expected %s\nstdout:\n%s\n'
                      'stderr:\n%s' % (' '.join(result.argv),
                                       result.returncode, expect,
                                       result.stdout, result.stderr))

    def openstack(self, *args, cloud=None, expect=0, env=None,
                  timeout=None):
        """Run openstack; assert its exit status (None: any)."""
        result = cli.run(args, self.environ(cloud, env),
                         timeout=timeout or self.cli_timeout)
        self.check_result(result, expect)
        return result

    def openstack_json(self, *args, **kwargs):
        return self.openstack(*(args + ('-f', 'json')), **kwargs).json()

    #: The proc that :meth:`start` started last.
    last_started = None

    def start(self, *args, cloud=None, env=None):
        """Start openstack in the background; finish() collects it."""
        proc = cli.start(args, self.environ(cloud, env))
        self.addCleanup(cli.reap, proc)
        self.last_started = proc
        return proc

    def finish(self, proc, expect=0, timeout=None):
        result = cli.finish(proc, timeout or self.cli_timeout)
        self.check_result(result, expect)
        return result

    def finish_timed(self, proc, expect=0, timeout=None,
                     clock=time.time):
        """Collect a start()ed proc, noting ``output_at`` (from clock)."""
        try:
            result = cli.finish_timed(proc, timeout or self.cli_timeout,
                                      clock=clock)
        except TimeoutError as exc:
            self.fail(str(exc))
        self.check_result(result, expect)
        return result

    def openstack_timed(self, *args, expect=0, env=None, timeout=None):
        """Run openstack like openstack(); also note ``output_at``."""
        return self.finish_timed(self.start(*args, env=env), expect=expect,
                                 timeout=timeout)

    def read_line(self, proc, timeout=WAIT, stream='stdout'):
        """One line of a start()ed proc's output ('' at its end)."""
        try:
            return cli.read_line(proc, timeout, stream)
        except TimeoutError as exc:
            self.fail(str(exc))

    def interrupt(self, proc, signum=signal.SIGINT):
        proc.send_signal(signum)

    # -- waiting for events, never for a fixed time -------------------------

    def wait_for(self, predicate, timeout=WAIT, what='condition'):
        """Wait until predicate() is true; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail('timed out after %ss waiting for %s'
                          % (timeout, what))
            time.sleep(0.05)

    def wait_cli(self, proc, check, what, timeout=WAIT):
        """Wait until check() is true while the CLI runs; return it.

        Fails at once, with the CLI's output, if the CLI has exited.
        """
        def done():
            found = check()
            if not found and proc.poll() is not None:
                self.fail('openstack exited with %s before %s: %r' % (
                    proc.returncode, what, cli.finish(proc, 60)))
            return found
        return self.wait_for(done, timeout, what)

    def wait_cli_polls(self, proc, server_id, polls=2, timeout=WAIT):
        """Wait until ``proc`` has read the server ``polls`` more times.

        Counted from now; fails at once, with the CLI's output, if the CLI
        ends first. A log has the arrival of each request: only once the
        (sequential) CLI's next request has come is the one before it
        known to have been answered, so ``polls`` is at least 2.
        """
        self.assertGreaterEqual(polls, 2)
        mark = self.poll_mark()
        return self.wait_cli(
            proc, lambda: self.cli_polls(server_id, mark) >= polls,
            '%d reads of server %s by the CLI' % (polls, server_id),
            timeout)

    def assert_running(self, proc, what):
        """The CLI has not ended."""
        if proc.poll() is not None:
            self.fail('the CLI ended %s: %r' % (what, cli.finish(proc, 60)))

    def hold_under_polls(self, step, proc, server_id, polls=2):
        """``step`` is held: the CLI reads the server and keeps running."""
        self.wait_held(step, server_id)
        self.wait_cli_polls(proc, server_id, polls)
        self.assert_running(proc, 'while step %s was held' % step)

    def imaging(self, hold=(), **failure):
        """vm1 booted, an image-create of it scripted and started.

        Started through the API (no CLI start); ``hold`` and ``failure``
        as :meth:`script`. Returns the server's ID.
        """
        server_id = self.boot('vm1')
        self.script(server_id, hold=hold, **failure)
        self.create_image(server_id)
        return server_id

    def wait_images_gone(self, server_id):
        self.wait_for(lambda: not self.images_of(server_id),
                      what='the images of %s deleted' % server_id)

    def wait_event_result(self, server_id, action, result):
        """Wait until the event of the instance action ends ``result``."""
        self.wait_for(lambda: self.instance_event(server_id, action)[
            'result'] == result, what='%s event %s' % (action, result))

    def walk(self, proc, server_id, steps):
        """Release each held step once the CLI has polled it held."""
        for step in steps:
            self.hold_under_polls(step, proc, server_id)
            self.release(step, server_id)

    def fail_under_polls(self, proc, server_id, step='upload',
                         outcome='error'):
        """Let a held step scripted to fail go on, once the CLI polled it.

        Then waits until the operation has ended with ``outcome``.
        """
        self.hold_under_polls(step, proc, server_id)
        self.release()
        self.operation_ended(server_id, outcome)

    def instance_action(self, server_id, name):
        """The newest instance action ``name`` of a server, with events."""
        actions = self.api_get('/servers/%s/os-instance-actions'
                               % server_id)['instanceActions']
        for action in actions:
            if action['action'] == name:
                return self.api_get('/servers/%s/os-instance-actions/%s' % (
                    server_id, action['request_id']))['instanceAction']
        self.fail('no %s action of %s in %s' % (name, server_id, actions))

    def instance_event(self, server_id, name):
        (event,) = self.instance_action(server_id, name)['events']
        return event

    # -- the cloud interface ------------------------------------------------

    def boot(self, name='vm1'):
        """Boot a server (ACTIVE, no task state); return its ID."""
        raise NotImplementedError

    def script(self, server, hold=(), fail_in=None, failure='error'):
        """Script the next image-create (or backup) of ``server``.

        ``hold``: the steps (:data:`STEPS`) it stops at until released;
        ``fail_in``: the step that ends with ``failure`` (FAILURES).
        """
        raise NotImplementedError

    def wait_held(self, step, server=None):
        """Wait until an operation (of server) is held at ``step``."""
        raise NotImplementedError

    def release(self, step=None, server=None):
        """Let a held step (None: every step) go on."""
        raise NotImplementedError

    def operation_ended(self, server_id, outcome='ok'):
        """Wait until the image operation of the server has ended.

        ``outcome``: 'ok' or a failure of FAILURES, or 'image_gone' and
        'server_gone' (the image or the server deleted meanwhile); a cloud
        that knows how the operation ended checks it.
        """
        raise NotImplementedError

    def operation_running(self, server_id):
        """True while the image operation of the server runs."""
        raise NotImplementedError

    def create_image(self, server_id, name='snap1'):
        """createImage through the API (no CLI start); the image ID."""
        raise NotImplementedError

    def task_state(self, server_id):
        """The server's task state now (None also when it is gone)."""
        raise NotImplementedError

    def server_gone(self, server_id):
        """True once GET /servers/{id} is 404."""
        raise NotImplementedError

    def images_of(self, server_id):
        """The snapshot images of a server (id, name, status, properties)."""
        raise NotImplementedError

    def poll_mark(self):
        """A mark from which :meth:`cli_polls` counts."""
        raise NotImplementedError

    def cli_polls(self, server_id, mark):
        """The CLI's GETs of one server since ``mark``."""
        raise NotImplementedError

    def api_get(self, path):
        """GET a Nova API path (after /v2.1) as admin; the JSON body."""
        raise NotImplementedError

    def http_fault(self, code, count, path=None, retry_after=None):
        """Answer the next ``count`` Nova requests with ``code``.

        Only requests whose path matches the regular expression ``path``
        if given; as a proxy in front of Nova would answer.
        """
        raise NotImplementedError

    def http_faulted(self, code):
        """How many answers of ``code`` the fault has given."""
        raise NotImplementedError

    # -- derived helpers ----------------------------------------------------

    def wait_task_state(self, server_id, wanted, timeout=WAIT):
        self.wait_for(lambda: self.task_state(server_id) == wanted,
                      timeout, 'task state %s of %s' % (wanted, server_id))

    def image_statuses(self, server_id):
        return [i['status'] for i in self.images_of(server_id)]
