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

"""Reliability suite, secrets and safety (issue 7).

No token, password or application-credential secret in stdout, stderr or
the log file, even with ``--debug`` (base.TestCase.check_result greps every
run for the simulator's known secrets; these tests add the log file and
the application credential). The simulator listens on loopback only; the
product makes no shell calls.
"""

import glob
import os
import re
import subprocess
import sys

import testtools

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import reliability

PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
APP_CRED_SECRET = 'app-cred-secret-0123456789abcdef'


class TestSecrets(reliability.ReliabilityTestCase):

    # Short: the one phase a test needs to observe is held.
    durations = {'pending': 0.1, 'snapshot': 0.2, 'pending_upload': 0.2,
                 'uploading': 0.2}

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')
        self.log_file = os.path.join(self.sim.state_dir, 'osc.log')

    def assert_no_secret(self, *texts):
        secrets = self.control.secret_values()
        self.assertTrue(secrets)
        for text in texts:
            for secret in secrets + [APP_CRED_SECRET]:
                self.assertNotIn(secret, text, 'a secret leaked')

    def openstack_debug(self, *args, expect=0, env=None):
        """Run with --debug: tracebacks are allowed there, secrets not."""
        result = cli.run(('--debug',) + args, self.environ(None, env),
                         timeout=reliability.WAIT)
        self.assertEqual(expect, result.returncode, result.stderr[-3000:])
        self.assert_no_secret(result.stdout, result.stderr)
        return result

    def read_log(self):
        with open(self.log_file) as stream:
            return stream.read()

    def test_debug_wait_phase_and_watch(self):
        created = self.openstack_debug(
            '--log-file', self.log_file, 'server', 'image',
            'create', 'vm1', '--name', 'snap', '-f', 'json', '--wait-phase',
            'snapshot')
        # The debug output is really there, with the plugin's own lines.
        self.assertIn('REQ: curl', created.stderr)
        watched = self.openstack_debug(
            '--log-file', self.log_file, 'server', 'task-state',
            'watch', 'vm1', '--until', 'idle', '-f', 'json')
        self.assertIn('X-Auth-Token: {SHA256}', watched.stderr)
        log = self.read_log()
        self.assertIn('osc_snapphase', log)
        self.assertTrue(any(s.startswith('simtok-')
                            for s in self.control.secret_values()))
        self.assert_no_secret(created.stdout, created.stderr,
                              watched.stdout, watched.stderr, log)
        # The plugin's own log lines, one by one.
        own = [line for line in (created.stderr + watched.stderr + log)
               .splitlines() if 'osc_snapphase' in line]
        self.assertTrue(own)
        self.assert_no_secret('\n'.join(own))

    def test_debug_after_token_revoked(self):
        """The 401 and the re-authentication are logged without secrets."""
        # Held until the watch has read the server, then the tokens are
        # revoked and the step released once the watch met the 401 and
        # read the server again with a new token.
        self.hold('pending', self.server['id'])
        self.api_create_image(self.server['id'])
        proc = self.start('--debug', '--log-file', self.log_file, 'server',
                          'task-state', 'watch', 'vm1', '--until', 'idle',
                          '-f', 'json')
        self.revoke_while_held('pending', self.server['id'])
        result = cli.finish(proc, reliability.WAIT)
        self.assertEqual(0, result.returncode, result.stderr[-3000:])
        statuses = [r['status'] for r in self.control.requests()['requests']
                    if r['service'] != 'keystone']
        self.assertIn(401, statuses, 'the revoked token was never used')
        self.assert_no_secret(result.stdout, result.stderr, self.read_log())

    def test_debug_failed_auth(self):
        # From the environment: core osc-lib logs the command line
        # unmasked with --debug, so --os-password would show there.
        env = {'OS_CLOUD': '', 'OS_CLIENT_CONFIG_FILE': os.devnull}
        env.update(self.sim.env)
        env['OS_PASSWORD'] = 'not-the-password-7a1c'
        result = self.openstack_debug('server', 'task-state', 'watch',
                                      'vm1', expect=1, env=env)
        self.assertIn('HTTP 401', result.stderr)
        self.assertNotIn('not-the-password-7a1c', result.stderr)

    def test_debug_application_credential_secret(self):
        env = {'OS_CLOUD': '', 'OS_CLIENT_CONFIG_FILE': os.devnull,
               'OS_AUTH_TYPE': 'v3applicationcredential',
               'OS_AUTH_URL': self.sim.auth_url,
               'OS_APPLICATION_CREDENTIAL_ID': 'a1b2c3',
               'OS_APPLICATION_CREDENTIAL_SECRET': APP_CRED_SECRET}
        result = self.openstack_debug('--log-file', self.log_file,
                                      'server', 'task-state', 'watch', 'vm1',
                                      expect=1, env=env)
        # The simulator knows no application credentials: refused.
        self.assertIn('HTTP 401', result.stderr)
        self.assertIn("'application_credential_secret': '***'",
                      result.stderr)
        self.assert_no_secret(result.stdout, result.stderr, self.read_log())


class TestSafety(testtools.TestCase):

    def test_simulator_refuses_non_loopback(self):
        for host in ('0.0.0.0', '192.0.2.10', '::'):
            proc = subprocess.run(
                [sys.executable, '-m', 'osc_snapphase.simulator', '--host',
                 host], capture_output=True, text=True,
                timeout=reliability.WAIT,
                stdin=subprocess.DEVNULL)
            self.assertEqual(2, proc.returncode, proc.stderr)
            self.assertIn('is not a loopback address; refusing to listen',
                          proc.stderr)
            self.assertNotIn('Traceback', proc.stderr)

    def test_product_makes_no_shell_calls(self):
        files = (glob.glob(os.path.join(PACKAGE, '*.py'))
                 + glob.glob(os.path.join(PACKAGE, 'v1', '*.py')))
        self.assertGreaterEqual(len(files), 8)
        pattern = re.compile(
            r'\bsubprocess\b|\bos\.system\b|\bos\.popen\b|shell\s*=\s*True'
            r'|\bos\.exec|\bos\.spawn|\bpty\b')
        offenders = []
        for path in files:
            with open(path) as stream:
                for number, line in enumerate(stream, 1):
                    if pattern.search(line):
                        offenders.append('%s:%d: %s' % (
                            os.path.relpath(path, PACKAGE), number,
                            line.strip()))
        self.assertEqual([], offenders)
