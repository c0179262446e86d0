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

"""Which task states the reliability suite requires a CLI to have shown.

The functional suite's ReliabilityTestCase.required_states on a recorded
simulator log (no simulator): only what the CLI cannot have missed
however late the simulator answered.
"""

from unittest import mock

import testtools

from osc_snapphase import phases
from osc_snapphase.tests.functional import reliability

SERVER = '6c1e3b1c-7d0a-4c8e-9d7e-0f7b8c9a1b2c'


def change(old, new, at):
    return {'resource': 'server', 'field': 'task_state', 'old': old,
            'new': new, 'monotonic': at}


def poll(at, status=200, fault=None, server=SERVER):
    return {'key': reliability.SERVER_GET, 'status': status, 'fault': fault,
            'path': '/compute/v2.1/servers/%s' % server, 'monotonic': at}


# image_snapshot from 10 s to 12 s, then image_uploading until 20 s.
LOG = [change(None, 'image_snapshot', 10.0),
       change('image_snapshot', 'image_uploading', 12.0),
       change('image_uploading', None, 20.0)]


def probe():
    """A ReliabilityTestCase to call its helpers on, never run (no setUp)."""
    class Probe(reliability.ReliabilityTestCase):
        def runTest(self):
            pass
    return Probe()


class TestRequiredStates(testtools.TestCase):

    def probe(self, requests):
        case = probe()
        case.control = mock.Mock()
        case.control.log.return_value = LOG
        case.control.requests.return_value = {'requests': requests}
        return case

    def required(self, requests, **kwargs):
        return self.probe(requests).required_states(SERVER, **kwargs)

    def test_one_poll_inside_is_not_enough(self):
        # Well inside image_snapshot, but its answer may have come after
        # 12 s (a starved simulator): the next request came at 13 s.
        self.assertEqual(['image_uploading'], self.required(
            [poll(10.5), poll(13.0), poll(14.0)]))

    def test_two_polls_inside_prove_the_first_was_answered_in_it(self):
        self.assertEqual(['image_snapshot', 'image_uploading', None],
                         self.required([poll(10.01), poll(11.99),
                                        poll(12.5), poll(19.9),
                                        poll(20.1), poll(21.0)]))

    def test_failed_polls_and_other_servers_do_not_count(self):
        other = '0f7b8c9a-1b2c-4c8e-9d7e-6c1e3b1c7d0a'
        self.assertEqual([], self.required(
            [poll(10.1, status=503, fault='status'), poll(10.2),
             poll(10.3, fault='malformed'), poll(13.0, server=other),
             poll(14.0, status=None)]))

    def test_states_ended_before_the_watch_began_are_dropped(self):
        self.assertEqual(['image_uploading'], self.required(
            [poll(10.1), poll(10.2), poll(13.0), poll(14.0)], after=12.0))

    def test_watch_started_late_is_checked_from_its_start(self):
        rows = [{'Server ID': SERVER, 'Status': 'ACTIVE',
                 'VM State': 'active', 'Task State': state,
                 'Power State': 'Running', 'Capture': capture}
                for state, capture in (('image_uploading', phases.COMPLETE),
                                       (None, phases.CAPTURE_NONE))]
        case = self.probe([poll(10.1), poll(10.2), poll(13.0), poll(14.0),
                           poll(20.5), poll(21.0)])
        self.assertEqual(['image_uploading', None],
                         case.assert_watch_complete(rows, SERVER,
                                                    since=12.0))
        self.assertRaises(case.failureException, case.assert_watch_complete,
                          rows, SERVER)
