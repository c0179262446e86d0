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

"""The simulator's command line and state files, without a socket."""

import argparse
import fcntl
import io
import itertools
import os
import pathlib
import types
from unittest import mock

import fixtures
import testtools
import yaml

from osc_snapphase.simulator import __main__ as cli
from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import control
from osc_snapphase.simulator import rest
from osc_snapphase.simulator import runner


class TestCommandLine(testtools.TestCase):

    def test_non_loopback_refused(self):
        self.assertRaises(runner.NotLoopback, runner.loopback_host,
                          '10.1.2.3')
        self.assertEqual('127.0.0.1', runner.loopback_host('localhost'))
        self.assertEqual('::1', runner.loopback_host('::1'))
        with mock.patch('sys.stderr', new_callable=io.StringIO) as err:
            self.assertEqual(2, cli.main(['--host', '0.0.0.0']))
        self.assertEqual(1, len(err.getvalue().splitlines()))

    def test_bad_http_fault_is_a_usage_error(self):
        with mock.patch('sys.stderr', new_callable=io.StringIO) as err:
            error = self.assertRaises(SystemExit, cli.main, [
                '--http-fault', '{"kind": "reset", "path": "("}'])
        self.assertEqual(2, error.code)
        self.assertIn('argument --http-fault: path is not a regular '
                      'expression', err.getvalue())

    def test_parse_durations(self):
        self.assertEqual({'pending': 0.5, 'uploading': 20.0},
                         cli.parse_durations('pending=0.5,uploading=20'))
        self.assertRaises(argparse.ArgumentTypeError, cli.parse_durations,
                          'pending')


class TestRequestLog(testtools.TestCase):
    """GET /_sim/requests: exact counts, the most recent entries."""

    def test_counts_exact_entries_bounded(self):
        self.useFixture(fixtures.MockPatchObject(
            cloud_mod, 'REQUEST_LOG_SIZE', 3))
        cloud = cloud_mod.Cloud()
        self.addCleanup(cloud.timers.stop)
        sim = types.SimpleNamespace(cloud=cloud)
        for number in range(5):
            cloud.count_request({'key': 'GET /image/v2/images',
                                 'number': number})
        cloud.count_request({'key': 'GET /compute/v2.1/servers/{id}'})
        req = rest.Request('GET', '/_sim/requests', {}, b'')
        answer = control.get_requests(sim, req)
        self.assertEqual({'GET /image/v2/images': 5,
                          'GET /compute/v2.1/servers/{id}': 1},
                         answer['counts'])
        self.assertEqual([3, 4, None], [r.get('number')
                                        for r in answer['requests']])
        self.assertEqual(3, answer['dropped'])
        control.reset_requests(sim, req)
        self.assertEqual({'counts': {}, 'requests': [], 'dropped': 0},
                         control.get_requests(sim, req))


class TestStateFiles(testtools.TestCase):
    """clouds.yaml and openrc: written at the start, removed at the end."""

    def setUp(self):
        super().setUp()
        # No listening socket: each simulator gets its own port number.
        ports = itertools.count(40001)

        def server(cloud, address, verbose=False):
            cloud.port = next(ports)
            return mock.Mock()

        self.useFixture(fixtures.MockPatchObject(
            runner.server_mod, 'SimServer', side_effect=server))
        self.sim = runner.Simulator(cloud_name='sim1')
        self.addCleanup(self.sim.stop)
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, 'clouds.yaml')

    def clouds(self):
        with open(self.path) as stream:
            return yaml.safe_load(stream)

    def test_own_file_written_then_removed(self):
        self.sim.write_state(self.dir)
        data = self.clouds()
        self.assertEqual(['sim1', 'sim1-admin'], list(data['clouds']))
        self.assertEqual(self.sim.auth_url,
                         data['clouds']['sim1']['auth']['auth_url'])
        self.assertEqual(0o600, os.stat(self.path).st_mode & 0o777)
        self.assertIn('export OS_PROJECT_NAME=demo', open(os.path.join(
            self.dir, 'openrc')).read())
        self.sim.remove_state()
        self.assertEqual([], os.listdir(self.dir))

    def test_other_clouds_kept(self):
        mine = {'clouds': {'prod': {'auth': {'auth_url': 'https://x'}},
                           'sim1': {'auth': {'auth_url': 'http://old'}}},
                'cache': {'expiration_time': 0}}
        with open(self.path, 'w') as stream:
            yaml.safe_dump(mine, stream)
        self.sim.write_state(self.dir)
        self.assertEqual(['prod', 'sim1', 'sim1-admin'],
                         list(self.clouds()['clouds']))
        self.sim.remove_state()
        del mine['clouds']['sim1']
        self.assertEqual(mine, self.clouds())
        self.assertEqual(['clouds.yaml'], os.listdir(self.dir))

    def test_entry_rewritten_by_another_simulator_kept(self):
        self.sim.write_state(self.dir)
        other = runner.Simulator(cloud_name='sim1')
        self.addCleanup(other.stop)
        other.write_state(self.dir)
        self.sim.remove_state()
        self.assertEqual(other.auth_url, self.clouds()['clouds']['sim1'][
            'auth']['auth_url'])
        # Its openrc files too: another simulator's now.
        self.assertIn(other.auth_url, self.read('openrc'))
        self.assertTrue(self.read('openrc-admin').startswith(
            runner.OPENRC_MARK))
        other.remove_state()
        self.assertEqual([], os.listdir(self.dir))

    def write(self, name, text):
        pathlib.Path(self.dir, name).write_text(text)

    def read(self, name):
        return pathlib.Path(self.dir, name).read_text()

    def test_foreign_openrc_refused(self):
        # A DevStack directory: its openrc is not the simulator's.
        devstack = 'export OS_PASSWORD=secret\n'
        self.write('openrc', devstack)
        error = self.assertRaises(runner.StateConflict,
                                  self.sim.write_state, self.dir)
        self.assertEqual(2, error.exit_code)
        self.assertIn(os.path.join(self.dir, 'openrc') + ' exists and was '
                      'not written by the simulator', str(error))
        self.sim.remove_state()
        self.assertEqual(['openrc'], os.listdir(self.dir))
        self.assertEqual(devstack, self.read('openrc'))

    def test_malformed_clouds_yaml_refused_and_kept(self):
        for text in ('clouds: [\n', '- a list\n', 'clouds: [a]\n'):
            self.write('clouds.yaml', text)
            error = self.assertRaises(runner.StateError,
                                      self.sim.write_state, self.dir)
            self.assertEqual(1, error.exit_code)
            self.assertIn(self.path, str(error))
            self.sim.remove_state()
            self.assertEqual(['clouds.yaml'], os.listdir(self.dir))
            self.assertEqual(text, self.read('clouds.yaml'))

    def test_remove_state_never_raises(self):
        logger = self.useFixture(fixtures.FakeLogger())
        self.sim.write_state(self.dir)
        self.write('clouds.yaml', 'clouds: [\n')
        self.sim.remove_state()
        self.assertEqual(['clouds.yaml'], os.listdir(self.dir))
        self.assertIn('the clouds sim1, sim1-admin of %s are left in %s'
                      % (self.sim.auth_url, self.path), logger.output)
        # A state directory removed meanwhile: nothing left to say.
        self.sim.write_state(os.path.join(self.dir, 'gone'))
        os.remove(os.path.join(self.dir, 'gone', 'clouds.yaml'))
        os.remove(os.path.join(self.dir, 'gone', 'openrc'))
        os.remove(os.path.join(self.dir, 'gone', 'openrc-admin'))
        os.rmdir(os.path.join(self.dir, 'gone'))
        self.sim.remove_state()
        self.assertEqual(1, logger.output.count('are left in'))

    def test_symlinked_clouds_yaml_stays_a_link(self):
        real = self.useFixture(fixtures.TempDir()).path
        target = os.path.join(real, 'clouds.yaml')
        with open(target, 'w') as stream:
            yaml.safe_dump({'clouds': {'prod': {}}}, stream)
        os.symlink(target, self.path)
        self.sim.write_state(self.dir)
        self.assertTrue(os.path.islink(self.path))
        self.assertEqual(['prod', 'sim1', 'sim1-admin'],
                         list(self.clouds()['clouds']))
        self.sim.remove_state()
        self.assertTrue(os.path.islink(self.path))
        self.assertEqual({'clouds': {'prod': {}}}, self.clouds())
        self.assertEqual(['clouds.yaml'], os.listdir(real))

    def test_temporary_file_of_its_own(self):
        # Another simulator's clouds.yaml.tmp is not clobbered.
        self.write('clouds.yaml.tmp', 'half written')
        self.sim.write_state(self.dir)
        self.assertEqual('half written', self.read('clouds.yaml.tmp'))

    def test_clouds_yaml_changed_under_a_lock(self):
        # Another simulator cannot take the directory's lock between
        # the read of clouds.yaml and its write.
        attempts = []
        dump = runner._dump

        def try_lock(data):
            fd = os.open(self.dir, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                attempts.append('locked')
            except BlockingIOError:
                attempts.append('busy')
            finally:
                os.close(fd)
            return dump(data)
        self.useFixture(fixtures.MockPatchObject(runner, '_dump',
                                                 side_effect=try_lock))
        self.write('clouds.yaml', 'clouds: {prod: {}}\n')
        self.sim.write_state(self.dir)
        self.sim.remove_state()
        self.assertEqual(['busy', 'busy'], attempts)
