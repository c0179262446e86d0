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
A ``--wait-phase upload`` and a ``watch --until idle`` run side by side
while the simulator holds the upload, until their tokens were renewed
twice because they expired; right after a renewal every token is revoked
(the APIs answer 401: that fresh token is used before it is due). The
upload is released once both have new tokens and have polled well past
the revoke. Both end with exit 0, nothing on stderr but the image line,
nothing lost, and only a handful of token requests per minute.
"""

import time

from osc_snapphase.tests.functional import reliability

TOKENS = reliability.TOKENS
# Token requests of the two processes when they start.
FIRST_TOKENS = 2


class TestTokenExpiry(reliability.ReliabilityTestCase):

    token_lifetime = 130
    durations = {'pending': 0.1, 'snapshot': 0.2, 'pending_upload': 0.2,
                 'uploading': 0.2}

    def token_requests(self, requests):
        return sum(1 for r in requests if r['key'] == TOKENS)

    def test_tokens_expire_and_are_revoked_during_a_60s_wait(self):
        server = self.create_server('vm1')
        server_id = server['id']
        self.hold('uploading', server_id)
        started = time.monotonic()
        waiter = self.start('server', 'image', 'create', 'vm1', '--name',
                            'snap', '-f', 'json', '--wait-phase', 'upload')
        self.control.wait_held('uploading', server=server_id,
                               timeout=reliability.WAIT)
        watch_started = time.monotonic()
        watcher = self.start('server', 'task-state', 'watch', 'vm1',
                             '--until', 'idle', '-f', 'json',
                             '--interval', '1')
        # Each renews once its token is 10 s old: wait for two renewals,
        # and revoke right after the second (that token is fresh, so it
        # is used before it is due for renewal: a 401).
        expired = self.wait_log(
            lambda requests: self.token_requests(requests) >= (
                FIRST_TOKENS + 2) and len(requests),
            'two token renewals', timeout=reliability.WAIT)
        self.assertGreaterEqual(self.control.revoke_tokens(), 2)
        revoked = self.token_requests(
            self.control.requests()['requests'][:expired])

        def recovered(requests):
            # The revoked token was used (401); both processes hold new
            # tokens, and polled plenty after that.
            refused = any(r['status'] == 401 for r in requests[expired:]
                          if r['service'] != 'keystone')
            tokens = self.token_requests(requests)
            polls = [i for i, r in enumerate(requests)
                     if self.good_poll(r, server_id)]
            return (refused and tokens >= revoked + 2
                    and len([i for i in polls if i >= expired]) >= 10
                    and len(polls) > 3 * tokens)
        self.wait_log(recovered, 'a 401, new tokens for both processes, '
                      'and more than three polls per token request',
                      timeout=reliability.WAIT)
        self.control.release('uploading', server=server_id)
        waited = self.finish(waiter, 0, timeout=reliability.WAIT)
        watched = self.finish(watcher, 0, timeout=reliability.WAIT)
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
        # Both processes poll the server: the watch answers only for the
        # states that lasted into its start (the upload, held).
        self.assert_watch_complete(watched.json(), server_id,
                                   since=watch_started)
        output = waited.json()
        self.assertEqual('active', output['status'])
        self.assertEqual('complete', output['capture'])
        self.assert_phases_complete(output, server_id)
        print('tokens=%d polls=%d minutes=%.2f' % (tokens, polls, minutes))
