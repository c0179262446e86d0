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

"""Faults of the Image service while ``watch`` follows an image operation.

The server polls answer; the CLI's reads of the image fail. As the faults
of the server polls (test_reliability_faults), they are retried and
nothing is lost; only invalid answers in a row end the watch (exit 1).
Each fault hits while the simulator holds the operation at a step, and
the step is released once the test has seen the CLI meet the fault and
read the image again (the simulator's request log).
"""

import re

from osc_snapphase.tests.functional import reliability
from osc_snapphase.tests.functional import test_reliability_faults

WAIT = reliability.WAIT
IMAGE_PATH = r'/images/[0-9a-f-]{36}$'


class TestImageServiceFaults(reliability.ReliabilityTestCase):
    """``server task-state watch vm1 --until idle -f json``, Glance faults.

    The watch is run as in test_reliability_faults.TestWatchFaults.
    """

    # Not the class itself at module level: the loader would run its
    # tests here too.
    durations = test_reliability_faults.DURATIONS
    INTERVAL = test_reliability_faults.TestWatchFaults.INTERVAL
    begin = test_reliability_faults.TestWatchFaults.begin
    watch = test_reliability_faults.TestWatchFaults.watch
    end = test_reliability_faults.TestWatchFaults.end
    assert_complete = test_reliability_faults.TestWatchFaults.assert_complete

    def image_fault(self, step, kind, count, **rule):
        """An HTTP fault on the CLI's GETs of one image, held at ``step``.

        ``count`` None: for ever, and the step is not released; else the
        step is released once the CLI met the fault ``count`` times and
        then read the image.
        """
        self.control.wait_held(step, server=self.server['id'], timeout=WAIT)
        since = self.log_size()
        self.control.add_http_fault(kind, count, endpoint='image',
                                    method='GET', path=IMAGE_PATH, **rule)
        if count is None:
            return

        def read_again(requests):
            faulted = [i for i, r in enumerate(requests)
                       if i >= since and r['fault'] == kind]
            return len(faulted) >= count and any(
                r['status'] == 200 and re.search(IMAGE_PATH, r['path'])
                for r in requests[faulted[-1] + 1:])
        self.wait_log(read_again, '%d %s faults of the image, then an '
                      'answered GET of it' % (count, kind))
        self.control.release(step, server=self.server['id'])

    def test_image_502_burst_then_normal(self):
        # 502, not 503: keystoneauth retries a 503 of the Image service
        # itself (openstacksdk's image_status_code_retries) before the
        # watch sees it.
        proc = self.begin(hold=('pending_upload',))
        self.image_fault('pending_upload', 'status', 3, code=502)
        result = self.end(proc, 0)
        self.assertEqual(1, result.stderr.count(
            'The Image service answered HTTP 502 (following the image '
            'operation of server vm1 (%s), task state '
            'image_pending_upload); retrying (the watch goes on)'
            % self.server['id']), result.stderr)
        self.assertIn('Recovered after 3 retries', result.stderr)
        self.assert_complete(result)

    def test_image_malformed_forever_is_exit_1(self):
        proc = self.begin(hold=('pending_upload',))
        self.image_fault('pending_upload', 'malformed', None,
                         variant='html200')
        result = self.end(proc, 1)
        self.assertIn('giving up after 5 invalid answers in a row',
                      result.stderr)
        # The rows so far, valid JSON (end read them).
        self.assertEqual(self.server['id'], self.rows[0]['Server ID'])
