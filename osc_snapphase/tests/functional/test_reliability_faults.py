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

"""Reliability suite, the fault matrix (issue 7): every row for ``server
task-state watch --until idle -f json`` and for ``server image create
--wait-phase``, and in every row nothing lost against the simulator's own
task-state log."""

import time

from osc_snapphase.tests.functional import reliability

# The path of one server, for HTTP faults aimed at the polls.
SERVER_PATH = r'/servers/[0-9a-f-]{36}$'
RETRY_LINE = 'retrying (the watch goes on)'


class FaultRows:
    """The rows shared by watch and --wait-phase.

    Subclasses say how to run the command and how to read its output.
    """

    def inject(self, at_state, kind, count=1, **rule):
        """Add an HTTP fault on the server polls once at_state is reached"""
        self.control.wait_task_state(self.server['id'], at_state, 30)
        rule.setdefault('endpoint', 'compute')
        rule.setdefault('path', SERVER_PATH)
        rule.setdefault('method', 'GET')
        self.control.add_http_fault(kind, count, **rule)
        return time.monotonic()

    def assert_image_active(self):
        self.control.wait_for(
            lambda s: any(i['id'] == self.image_id and i['status'] ==
                          'active' for i in s['images']), 30)

    # -- the rows ------------------------------------------------------------

    def test_503_burst_then_normal(self):
        proc = self.begin()
        self.inject('image_pending_upload', 'status', 3, code=503)
        result = self.end(proc, 0)
        self.assertEqual(1, result.stderr.count('HTTP 503'), result.stderr)
        self.assertEqual(1, result.stderr.count(RETRY_LINE), result.stderr)
        self.assertIn('Recovered after 3 retries', result.stderr)
        self.assert_complete(result)
        self.assert_image_active()

    def test_connection_refused_for_2s(self):
        proc = self.begin()
        self.inject('image_pending_upload', 'refuse_for', 1, seconds=2)
        result = self.end(proc, 0)
        self.assertIn('Connection problem', result.stderr)
        self.assertEqual(1, result.stderr.count(RETRY_LINE), result.stderr)
        self.assertIn('Recovered after', result.stderr)
        self.assert_complete(result)
        self.assert_image_active()

    def test_connection_reset(self):
        proc = self.begin()
        self.inject('image_pending_upload', 'reset', 3)
        result = self.end(proc, 0)
        self.assertEqual(1, result.stderr.count(RETRY_LINE), result.stderr)
        self.assertIn('Recovered after 3 retries', result.stderr)
        self.assert_complete(result)

    def test_429_retry_after_is_honoured(self):
        proc = self.begin()
        self.inject('image_pending_upload', 'status', 1, code=429,
                    retry_after=2)
        result = self.end(proc, 0)
        self.assertIn('HTTP 429', result.stderr)
        requests = self.control.requests()['requests']
        limited = [r for r in requests if r['status'] == 429]
        self.assertEqual(1, len(limited))
        following = self.first_request_after(limited[0]['monotonic'])
        self.assertIsNotNone(following)
        gap = following['monotonic'] - limited[0]['monotonic']
        self.assertGreaterEqual(gap, 1.95, 'Retry-After 2 not honoured')
        self.assertLess(gap, 4.0)
        self.assert_complete(result)

    def test_slow_responses_5s(self):
        proc = self.begin()
        self.inject('image_snapshot', 'delay', 1, seconds=5)
        result = self.end(proc, 0)
        self.assertNotIn('Traceback', result.stderr)
        self.assert_complete(result, delay=5)
        self.assert_image_active()

    def test_malformed_html_page_is_retried(self):
        proc = self.begin()
        self.inject('image_pending_upload', 'malformed', 2,
                    variant='html200')
        result = self.end(proc, 0)
        self.assertIn('not a valid server', result.stderr)
        self.assertIn('Recovered after 2 retries', result.stderr)
        self.assert_complete(result)

    def test_malformed_truncated_json_forever_is_exit_1(self):
        proc = self.begin()
        self.inject('image_pending_upload', 'malformed', None,
                    variant='truncated')
        result = self.end(proc, 1)
        self.assertIn('not a valid server', result.stderr)
        self.assertIn('giving up after 5 invalid answers', result.stderr)
        self.assertLessEqual(len(self.stderr_lines(result)), 3,
                             result.stderr)

    def test_token_revoked_mid_run(self):
        proc = self.begin()
        self.control.wait_task_state(self.server['id'],
                                     'image_pending_upload', 30)
        before = self.control.request_counts().get(
            'POST /identity/v3/auth/tokens', 0)
        self.assertGreaterEqual(self.control.revoke_tokens(), 1)
        result = self.end(proc, 0)
        self.assertEqual([], [line for line in self.stderr_lines(result)
                              if not line.startswith('Image ')],
                         'the renewal was visible to the user')
        counts = self.control.request_counts()
        self.assertGreaterEqual(counts.get('POST /identity/v3/auth/tokens'),
                                before + 1, 'no new token after revoke')
        statuses = [r['status'] for r in self.control.requests()['requests']
                    if r['service'] != 'keystone']
        self.assertIn(401, statuses, 'the revoked token was never used')
        self.assert_complete(result)
        self.assert_image_active()

    def test_server_deleted_mid_run(self):
        self.control.add_fault('uploading', 'server_deleted')
        proc = self.begin()
        result = self.end(proc, 3)
        self.assertIn('vm1', result.stderr)
        self.assertIn(self.server['id'], result.stderr)
        self.assertIn('deleted', result.stderr)
        self.assert_complete(result)

    def test_image_deleted_mid_upload(self):
        self.control.add_fault('uploading', 'image_deleted')
        proc = self.begin()
        result = self.end(proc, 3)
        self.assertIn(self.image_id, result.stderr)
        self.assertIn('gone', result.stderr)
        self.assert_complete(result)

    def _driver_error(self, phase):
        self.control.add_fault(phase, 'driver_error', at=self.fault_at)
        proc = self.begin()
        result = self.end(proc, 3)
        self.assertIn(self.image_id, result.stderr)
        self.assertIn('without an active image', result.stderr)
        self.assertLessEqual(len(self.stderr_lines(result)), 3)
        self.assert_complete(result)
        return result

    def test_driver_error_pending(self):
        self.control.configure(durations={'pending': self.long_pending})
        self._driver_error('pending')

    def test_driver_error_snapshot(self):
        self._driver_error('snapshot')

    def test_driver_error_pending_upload(self):
        self._driver_error('pending_upload')

    def test_driver_error_uploading(self):
        self._driver_error('uploading')

    def test_driver_error_killed_image(self):
        self.control.add_fault('uploading', 'driver_error', image='killed')
        proc = self.begin()
        result = self.end(proc, 3)
        self.assertIn(self.image_id, result.stderr)
        self.assertIn('killed', result.stderr)


class TestWatchFaults(FaultRows, reliability.ReliabilityTestCase):
    """``openstack server task-state watch vm1 --until idle -f json``.

    The image is created straight through the API, then the watch starts;
    ``image_snapshot_pending`` lasts long enough for the watch to see the
    operation from its start.
    """

    durations = {'pending': 1.8, 'snapshot': 1.5, 'pending_upload': 1.0,
                 'uploading': 3.0}
    INTERVAL = 0.3
    fault_at = 0.5
    long_pending = 3.5

    def begin(self, *extra):
        self.server = self.create_server('vm1')
        self.image_id = self.api_create_image(self.server['id'])
        return self.start('server', 'task-state', 'watch', 'vm1',
                          '--until', 'idle', '-f', 'json',
                          '--interval', str(self.INTERVAL), *extra)

    def end(self, proc, expect):
        result = self.finish(proc, expect, timeout=60)
        self.rows = result.json()
        return result

    def assert_complete(self, result, delay=0.0):
        self.assert_watch_complete(self.rows, self.server['id'],
                                   self.INTERVAL, delay)

    def test_driver_error_pending(self):
        self.fault_at = 0.9
        super().test_driver_error_pending()

    def test_timeout_holds_with_5s_responses(self):
        self.server = self.create_server('vm1')
        # Answers so slow that waiting for one would break the bound.
        self.control.add_http_fault('delay', None, seconds=20,
                                    endpoint='compute', path=SERVER_PATH)
        proc = self.start('server', 'task-state', 'watch', 'vm1',
                          '--until', 'task-state=image_uploading',
                          '--timeout', '3', '-f', 'json')
        result = self.finish(proc, 124, timeout=30)
        elapsed = result.ended - result.started
        # Without a bound on each request it would end after a 20 s answer.
        self.assertLess(elapsed, 15.0, 'the timeout did not hold')
        self.assertRegex(result.stderr, r'Timed out after 3\.[0-4]s')
        result.json()

    def test_stuck_task_state_stall_timeout_gives_4(self):
        self.control.add_fault('uploading', 'stuck_saving', at=0.1)
        proc = self.begin('--stall-timeout', '2')
        result = self.end(proc, 4)
        self.assertIn('image_uploading', result.stderr)
        self.assertRegex(result.stderr, r'for 2\.\ds without change')
        self.assertIn('looks stuck', result.stderr)
        self.assert_complete(result)

    def test_stuck_task_state_timeout_gives_124(self):
        self.control.add_fault('uploading', 'stuck_saving', at=0.1)
        proc = self.begin('--timeout', '7')
        result = self.end(proc, 124)
        self.assertRegex(result.stderr,
                         r'task state image_uploading \(upload\) for '
                         r'\d+\.\ds')
        self.assert_complete(result)


class TestWaitPhaseFaults(FaultRows, reliability.ReliabilityTestCase):
    """``openstack server image create vm1 --wait-phase upload``"""

    durations = {'pending': 0.3, 'snapshot': 1.5, 'pending_upload': 1.0,
                 'uploading': 3.0}
    # The hook polls adaptively; no phase poll gap is longer than this
    # during the short phases of these tests.
    INTERVAL = 0.5
    fault_at = 0.5
    long_pending = 1.0

    def begin(self, *extra, phase='upload'):
        self.server = self.create_server('vm1')
        self.images_before = {i['id'] for i in self.control.state()['images']}
        return self.start('server', 'image', 'create', 'vm1', '--name',
                          'snap', '-f', 'json', '--wait-phase', phase,
                          *extra)

    def _new_image(self):
        state = self.control.state()
        new = [i['id'] for i in state['images'] + state['deleted_images']
               if i['id'] not in self.images_before]
        self.assertEqual(1, len(new), 'exactly one image created')
        return new[0]

    def inject(self, at_state, kind, count=1, **rule):
        started = super().inject(at_state, kind, count, **rule)
        self.image_id = self._new_image()
        return started

    def end(self, proc, expect):
        result = self.finish(proc, expect, timeout=60)
        self.image_id = self._new_image()
        self.assertIn('Image %s of server' % self.image_id, result.stderr)
        self.output = result.json() if expect == 0 else None
        if expect:
            self.assertEqual('', result.stdout)
        return result

    def assert_complete(self, result, delay=0.0):
        if self.output is None:
            return
        self.assertEqual(self.image_id, self.output['id'])
        self.assertEqual('active', self.output['status'])
        self.assert_phases_complete(self.output, self.server['id'],
                                    self.INTERVAL, delay)

    def test_timeout_holds_with_5s_responses(self):
        self.server = self.create_server('vm1')
        self.control.add_fault('uploading', 'stuck_saving', at=0.1)
        # Answers so slow that waiting for one would break the bound.
        self.control.add_http_fault('delay', None, seconds=20,
                                    endpoint='compute', path=SERVER_PATH)
        proc = self.start('server', 'image', 'create', 'vm1', '--name',
                          'snap', '-f', 'json', '--wait-phase', 'upload',
                          '--wait-phase-timeout', '3')
        result = self.finish(proc, 124, timeout=30)
        elapsed = result.ended - result.started
        # Without a bound on each request it would end after a 20 s answer.
        self.assertLess(elapsed, 15.0, 'the timeout did not hold')
        self.assertRegex(result.stderr, r'Timed out after 3\.[0-4]s')

    def test_stuck_task_state_timeout_gives_124(self):
        self.control.add_fault('uploading', 'stuck_saving', at=0.1)
        proc = self.begin('--wait-phase-timeout', '7')
        result = self.end(proc, 124)
        self.assertIn('task state image_uploading', result.stderr)
        self.assertRegex(result.stderr,
                         r'It may be stuck: task state image_uploading has '
                         r'not changed for \d+\.\ds')
        self.assertIn(self.image_id, result.stderr)
        self.assertIn('goes on in the cloud', result.stderr)

    def test_snapshot_phase_with_503_burst(self):
        proc = self.begin(phase='snapshot')
        self.inject('image_snapshot', 'status', 2, code=503)
        result = self.end(proc, 0)
        self.assertIn('Recovered after 2 retries', result.stderr)
        self.assertIn(self.output['server_phase'], ('packaging', 'upload'))
        self.assert_image_active()

    def test_backup_driver_error_in_backup_phase(self):
        self.control.add_fault('backup', 'driver_error',
                               operation='createBackup')
        self.server = self.create_server('vm1')
        self.images_before = {i['id'] for i in self.control.state()['images']}
        proc = self.start('server', 'backup', 'create', 'vm1', '--name',
                          'bak', '--type', 'daily', '--rotate', '2',
                          '-f', 'json', '--wait-phase', 'upload')
        result = self.end(proc, 3)
        self.assertIn('without an active image', result.stderr)
        # As in nova 34, the backup event stays open until the backup
        # ends, so the driver error shows in it.
        self.assertIn('(Nova: compute_backup_instance failed)',
                      result.stderr)
