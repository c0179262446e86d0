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

"""Test of the subprocess fixture and of the simulator process: start-up,
files, refusals and clean stops."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import fixtures
import testtools
import yaml

from osc_snapphase.simulator import runner
from osc_snapphase.tests import fixture

# Every wait for an event gives up after this long (a loaded machine).
WAIT = 240
SIMULATOR = [sys.executable, '-m', 'osc_snapphase.simulator']


class TestFixture(testtools.TestCase):

    def test_start_and_stop(self):
        sim = fixture.SimulatorFixture(durations={'snapshot': 0.1})
        self.useFixture(sim)
        self.assertTrue(os.path.exists(sim.clouds_yaml))
        self.assertEqual(sim.auth_url, sim.env['OS_AUTH_URL'])
        self.assertTrue(sim.env['OS_PASSWORD'].startswith(
            'sim-secret-password-'))
        self.assertEqual(0.1, sim.control.state()['durations']['snapshot'])
        self.assertTrue(sim.control.secret_values())
        self.assertEqual(0, sim.stop())
        # What the simulator wrote went with it.
        self.assertFalse(os.path.exists(sim.clouds_yaml))


class TestStateDir(testtools.TestCase):
    """The simulator process and what it finds in its --state-dir."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.clouds_yaml = os.path.join(self.dir, 'clouds.yaml')

    def write(self, name, text):
        pathlib.Path(self.dir, name).write_text(text)

    def read(self, name):
        return pathlib.Path(self.dir, name).read_text()

    def refused(self, status):
        proc = subprocess.run(SIMULATOR + ['--state-dir', self.dir],
                              capture_output=True, text=True, timeout=WAIT,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(status, proc.returncode, proc.stderr)
        self.assertEqual('', proc.stdout)
        self.assertNotIn('Traceback', proc.stderr)
        return proc.stderr

    def test_foreign_openrc_refused(self):
        devstack = 'export OS_PASSWORD=secret\n'
        self.write('openrc-admin', devstack)
        stderr = self.refused(2)
        self.assertEqual(
            'python -m osc_snapphase.simulator: error: %s exists and was '
            'not written by the simulator; refusing to overwrite it: '
            'choose another --state-dir\n'
            % os.path.join(self.dir, 'openrc-admin'), stderr)
        self.assertEqual(['openrc-admin'], os.listdir(self.dir))
        self.assertEqual(devstack, self.read('openrc-admin'))

    def test_malformed_clouds_yaml_refused(self):
        self.write('clouds.yaml', 'clouds:\n  prod: [\n')
        stderr = self.refused(1)
        self.assertTrue(stderr.startswith(
            'python -m osc_snapphase.simulator: error: cannot read %s: '
            % self.clouds_yaml), stderr)
        self.assertEqual(['clouds.yaml'], os.listdir(self.dir))
        self.assertEqual('clouds:\n  prod: [\n', self.read('clouds.yaml'))

    def test_sighup_stops_it_cleanly(self):
        # A closed terminal: its clouds leave clouds.yaml, files go.
        self.write('clouds.yaml', 'clouds:\n  prod: {}\n')
        ready = os.path.join(self.dir, 'ready.json')
        proc = subprocess.Popen(
            SIMULATOR + ['--state-dir', self.dir, '--ready-file', ready],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True,
            # As from a terminal, whatever the test runner ignores.
            preexec_fn=lambda: signal.signal(signal.SIGHUP,
                                             signal.SIG_DFL))
        self.addCleanup(proc.stderr.close)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + WAIT
        while not os.path.exists(ready):
            self.assertIsNone(proc.poll(), 'the simulator exited')
            self.assertLess(time.monotonic(), deadline, 'not ready')
            time.sleep(0.02)
        with open(ready) as stream:
            self.assertEqual(proc.pid, json.load(stream)['pid'])
        self.assertEqual(['prod', 'snapsim', 'snapsim-admin'],
                         sorted(yaml.safe_load(self.read('clouds.yaml'))[
                             'clouds']))
        self.assertTrue(self.read('openrc').startswith(runner.OPENRC_MARK))
        proc.send_signal(signal.SIGHUP)
        self.assertEqual(0, proc.wait(WAIT))
        self.assertEqual('', proc.stderr.read())
        self.assertEqual(['clouds.yaml'], os.listdir(self.dir))
        self.assertEqual({'clouds': {'prod': {}}},
                         yaml.safe_load(self.read('clouds.yaml')))
