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

"""Reliability suite, tokens that expire during a long wait (issue 7).

The simulator issues 130 s tokens; keystoneauth renews a token once less
than 120 s of it is left, so after 10 s every token is "about to expire".
A 60 s ``--wait-phase upload`` and a 60 s ``watch --until idle`` run side
by side; half way, every token is revoked (the APIs answer 401). Both end
with exit 0, nothing on stderr but the image line, nothing lost, and only
a handful of token requests per minute.
"""

import time

from osc_snapphase.tests.functional import reliability

TOKENS = 'POST /identity/v3/auth/tokens'


class TestTokenExpiry(reliability.ReliabilityTestCase):

    token_lifetime = 130
    durations = {'pending': 0.3, 'snapshot': 1.5, 'pending_upload': 1.0,
                 'uploading': 55.0}

    def test_tokens_expire_and_are_revoked_during_a_60s_wait(self):
        server = self.create_server('vm1')
        started = time.monotonic()
        waiter = self.start('server', 'image', 'create', 'vm1', '--name',
                            'snap', '-f', 'json', '--wait-phase', 'upload')
        self.control.wait_task_state(server['id'], 'image_snapshot', 30)
        watcher = self.start('server', 'task-state', 'watch', 'vm1',
                             '--until', 'idle', '-f', 'json',
                             '--interval', '1')
        time.sleep(max(0.0, started + 30 - time.monotonic()))
        self.assertGreaterEqual(self.control.revoke_tokens(), 2)
        waited = self.finish(waiter, 0, timeout=70)
        watched = self.finish(watcher, 0, timeout=70)
        minutes = (time.monotonic() - started) / 60.0
        self.assertEqual([], [line for line in self.stderr_lines(waited)
                              if not line.startswith('Image ')])
        self.assertEqual('', watched.stderr.strip())
        counts = self.control.request_counts()
        statuses = [r['status'] for r in self.control.requests()['requests']
                    if r['service'] != 'keystone']
        self.assertIn(401, statuses, 'the revoked tokens were never used')
        # Two processes, each renewing about every 10 s, plus the revoke.
        tokens = counts[TOKENS]
        self.assertLessEqual(tokens, 2 * (8 + 10 * minutes),
                             'a storm of token requests: %d' % tokens)
        polls = counts[reliability.SERVER_GET]
        self.assertGreater(polls, 3 * tokens,
                           'every request re-authenticated')
        self.assert_watch_complete(watched.json(), server['id'], 1.0)
        output = waited.json()
        self.assertEqual('active', output['status'])
        self.assert_phases_complete(output, server['id'], 0.5)
        print('tokens=%d polls=%d minutes=%.2f' % (tokens, polls, minutes))
