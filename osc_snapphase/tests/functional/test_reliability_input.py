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

"""Reliability suite, bad input (issue 7).

Each case: a clear message on stderr (one line, or argparse's usage block
followed by one ``error:`` line), exit 1 or 2, no traceback, and nothing
created in the simulator. The usage errors of the parsers are unit tests
(tests/unit/test_parsers.py); four of them stay here, end to end.
"""

import os

from osc_snapphase.tests.functional import reliability

WATCH = ('server', 'task-state', 'watch')
IMAGE_CREATE = ('server', 'image', 'create')


class TestBadInput(reliability.ReliabilityTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.create_server('vm1')

    def bad(self, args, expect, phrase, env=None, cloud=None):
        images = self.image_count()
        requests = len(self.control.requests()['requests'])
        result = self.openstack(*args, expect=expect, env=env, cloud=cloud)
        lines = self.stderr_lines(result)
        if expect == 2 and lines and lines[0].startswith('usage:'):
            # argparse: the usage block, then exactly one error line.
            errors = [line for line in lines if 'error:' in line]
            self.assertEqual(1, len(errors), result.stderr)
            self.assertTrue(lines[-1] is errors[0], result.stderr)
            self.assertTrue(all(line.startswith(('usage:', ' '))
                                for line in lines[:-1]), result.stderr)
        else:
            self.assertLessEqual(len(lines), 2, result.stderr)
            self.assertGreaterEqual(len(lines), 1)
        self.assertIn(phrase, result.stderr)
        self.assertEqual('', result.stdout)
        self.assertEqual(images, self.image_count(), 'an image was created')
        posted = [r for r in self.control.requests()['requests'][requests:]
                  if r['method'] == 'POST' and 'identity' not in r['path']]
        self.assertEqual([], posted, 'the cloud was changed')
        return result

    # -- servers -----------------------------------------------------------

    def test_nonexistent_server(self):
        self.bad(WATCH + ('nosuch', '--until', 'idle'), 1,
                 'No Server found for nosuch')

    def test_nonexistent_server_wait_phase(self):
        self.bad(IMAGE_CREATE + ('nosuch', '--wait-phase', 'snapshot'), 1,
                 'No Server found for nosuch')

    def test_ambiguous_name(self):
        self.create_server('dup')
        self.create_server('dup')
        self.bad(WATCH + ('dup', '--until', 'idle'), 1,
                 "More than one Server exists with the name 'dup'")

    def test_ambiguous_name_wait_phase(self):
        self.create_server('dup')
        self.create_server('dup')
        self.bad(IMAGE_CREATE + ('dup', '--wait-phase', 'snapshot'), 1,
                 "More than one Server exists with the name 'dup'")

    def test_same_server_twice(self):
        self.bad(WATCH + ('vm1', self.server['id']), 1,
                 'is given more than once')

    # -- usage errors, end to end -------------------------------------------
    # The parsers' bad input is covered case by case by the unit tests
    # (tests/unit/test_parsers.py); these few prove the real openstack
    # gives exit status 2 and the message on stderr.

    def test_interval_zero(self):
        self.bad(WATCH + ('vm1', '--interval', '0'), 2,
                 'argument --interval: must be at least 0.2 seconds')

    def test_until_unknown(self):
        self.bad(WATCH + ('vm1', '--until', 'finished'), 2,
                 "argument --until: unknown condition 'finished'")

    # -- --wait-phase ------------------------------------------------------

    def test_wait_phase_unknown(self):
        self.bad(IMAGE_CREATE + ('vm1', '--wait-phase', 'bogus'), 2,
                 "argument --wait-phase: invalid choice: 'bogus'")

    def test_wait_with_wait_phase(self):
        self.bad(IMAGE_CREATE + ('vm1', '--wait', '--wait-phase', 'upload'),
                 2, 'argument --wait-phase: not allowed with argument --wait')

    def test_wait_phase_busy_server(self):
        self.control.set_server_state(self.server['id'],
                                      task_state='powering-off')
        # 5: busy, not an error (retry once the task is over).
        self.bad(IMAGE_CREATE + ('vm1', '--wait-phase', 'snapshot'), 5,
                 'is busy: task state powering-off')

    # -- authentication ----------------------------------------------------

    def no_credentials_env(self):
        return {'OS_CLOUD': '', 'OS_CLIENT_CONFIG_FILE': os.devnull}

    def test_no_credentials(self):
        self.bad(WATCH + ('vm1',), 1, 'Missing value auth-url',
                 env=self.no_credentials_env())

    def test_no_credentials_wait_phase(self):
        self.bad(IMAGE_CREATE + ('vm1', '--wait-phase', 'snapshot'), 1,
                 'Missing value auth-url', env=self.no_credentials_env())

    def test_wrong_password(self):
        self.bad(('--os-password', 'wrong') + WATCH + ('vm1',), 1,
                 'The request you have made requires authentication')

    def test_wrong_password_wait_phase(self):
        self.bad(('--os-password', 'wrong') + IMAGE_CREATE
                 + ('vm1', '--wait-phase', 'snapshot'), 1,
                 'The request you have made requires authentication')

    def test_unreachable_auth_url(self):
        self.bad(('--os-auth-url', 'http://127.0.0.1:9/identity') + WATCH
                 + ('vm1',), 1, 'Unable to establish connection')

    # -- a cloud that hides task states -------------------------------------

    def test_server_without_os_ext_sts(self):
        self.control.configure(hide_ext_sts=True)
        self.bad(WATCH + ('vm1', '--until', 'idle'), 1,
                 'The cloud does not show task states for server')

    def test_server_without_os_ext_sts_wait_phase(self):
        self.control.configure(hide_ext_sts=True)
        self.bad(IMAGE_CREATE + ('vm1', '--wait-phase', 'snapshot'), 1,
                 'The cloud does not show task states for server')

    def test_server_without_os_ext_sts_show(self):
        self.control.configure(hide_ext_sts=True)
        self.bad(('server', 'task-state', 'show', 'vm1'), 1,
                 'The cloud does not show task states for server')
