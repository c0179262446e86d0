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

"""The simulator as a user meets it: core server actions, resets, stop.

``openstack server reboot``, ``stop`` and ``start`` against the
simulator, seen by ``openstack server task-state watch``; a client that
resets its connection; the clouds.yaml entries gone when it stops.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

import fixtures
import testtools
import yaml

from osc_snapphase.tests import cli
from osc_snapphase.tests import fixture
from osc_snapphase.tests.functional import base

WAIT = base.WAIT


class TestServerActions(base.TestCase):
    """Each action is held in its first task state until the watch saw it."""

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')

    def watched(self, step, action, task_state):
        """Run the action held at step; a watch sees task_state, then idle.

        Returns the watch's output.
        """
        self.hold(step, self.server['id'])
        self.openstack('server', *action)
        self.control.wait_held(step, self.server['id'], timeout=WAIT)
        watch = self.start('server', 'task-state', 'watch', 'vm1',
                           '--until', 'idle')
        self.wait_cli_polls(watch, self.server['id'])
        self.assertEqual(1, self.control.release(step, self.server['id']))
        result = self.finish(watch, 0)
        self.assertIn(task_state, result.stdout)
        return result

    def shown(self):
        return self.openstack_json('server', 'show', 'vm1')

    def test_reboot_soft_then_hard(self):
        self.watched('reboot', ('reboot', 'vm1'), 'rebooting')
        self.watched('reboot', ('reboot', '--hard', 'vm1'), 'rebooting_hard')
        states = [e['new'] for e in self.task_log(self.server['id'])]
        self.assertEqual(
            ['rebooting', 'reboot_pending', 'reboot_started', None,
             'rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard',
             None], states[states.index('rebooting'):])
        shown = self.shown()
        self.assertEqual(('ACTIVE', 1), (shown['status'],
                                         shown['OS-EXT-STS:power_state']))

    def test_stop_then_start(self):
        self.watched('power', ('stop', 'vm1'), 'powering-off')
        shown = self.shown()
        self.assertEqual(('SHUTOFF', 'stopped', 4), (
            shown['status'], shown['OS-EXT-STS:vm_state'],
            shown['OS-EXT-STS:power_state']))
        refused = self.openstack('server', 'reboot', 'vm1', expect=1)
        self.assertIn("Cannot 'reboot' instance %s while it is in vm_state "
                      'stopped' % self.server['id'], refused.stderr)
        self.watched('power', ('start', 'vm1'), 'powering-on')
        shown = self.shown()
        self.assertEqual(('ACTIVE', 'active', 1), (
            shown['status'], shown['OS-EXT-STS:vm_state'],
            shown['OS-EXT-STS:power_state']))


class TestClientReset(testtools.TestCase):

    def test_reset_leaves_no_traceback(self):
        # --verbose: the simulator logs the reset in one line, the event
        # the test waits for.
        sim = self.useFixture(fixture.SimulatorFixture(
            extra_args=['--verbose']))
        host, port = sim.auth_url.split('/')[2].rsplit(':', 1)
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b'GET /compute/v2.1/servers HTTP/1.1\r\nHost: x\r\n')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
        sock.close()
        deadline = time.monotonic() + WAIT
        while True:
            with open(sim.log_path, errors='replace') as stream:
                text = stream.read()
            if 'Connection reset by peer' in text:
                break
            self.assertLess(time.monotonic(), deadline,
                            'no reset logged: %s' % text)
            time.sleep(0.05)
        self.assertNotIn('Traceback', text)
        self.assertEqual(1, text.count('Connection reset by peer'), text)
        # It goes on serving.
        listed = cli.run(('server', 'list'), cli.environ(
            clouds_yaml=sim.clouds_yaml, cloud=sim.cloud_name))
        self.assertEqual(0, listed.returncode, listed.stderr)


class TestStop(testtools.TestCase):
    """python -m osc_snapphase.simulator cleans up what it wrote."""

    def start(self, state_dir):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'osc_snapphase.simulator',
             '--state-dir', state_dir], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=cli.environ())
        self.addCleanup(cli.reap, proc)
        line = cli.read_line(proc, timeout=120)
        self.assertTrue(line.startswith('snapsim ready: '), line)
        return proc

    def clouds(self, path):
        with open(path) as stream:
            return yaml.safe_load(stream)

    def test_entries_removed_on_sigterm_and_sigint(self):
        state_dir = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(state_dir, 'clouds.yaml')
        theirs = {'clouds': {'prod': {'auth': {'auth_url': 'https://k'},
                                      'region_name': 'R1'}}}
        with open(path, 'w') as stream:
            yaml.safe_dump(theirs, stream)
        for signum, status in ((signal.SIGTERM, 0), (signal.SIGINT, 0)):
            proc = self.start(state_dir)
            self.assertEqual(['prod', 'snapsim', 'snapsim-admin'],
                             sorted(self.clouds(path)['clouds']))
            # The written cloud works with the core CLI.
            listed = cli.run(('server', 'list', '-f', 'json'), cli.environ(
                clouds_yaml=path, cloud='snapsim'))
            self.assertEqual((0, []), (listed.returncode, listed.json()))
            proc.send_signal(signum)
            _out, err = proc.communicate(timeout=WAIT)
            self.assertEqual(status, proc.returncode, err)
            self.assertNotIn(b'Traceback', err)
            self.assertEqual(theirs, self.clouds(path), signum)
            self.assertEqual(['clouds.yaml'], os.listdir(state_dir))
