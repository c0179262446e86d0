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

"""Helpers of the reliability suite (issue 7): create images quickly,
compare the output with the simulator's own task-state log."""

import json
import urllib.request

from osc_snapphase import phases
from osc_snapphase.tests.functional import base

SERVER_GET = 'GET /compute/v2.1/servers/{id}'
IMAGE_TASK_STATES = ('image_snapshot_pending', 'image_snapshot',
                     'image_backup', 'image_pending_upload',
                     'image_uploading')
# Margin around a poll's time when judging which state it could see.
MARGIN = 0.1


class ReliabilityTestCase(base.TestCase):
    """base.TestCase plus the reliability helpers."""

    # -- acting on the cloud quickly, without a 1 s CLI start -------------

    def _token(self):
        env = self.sim.env
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': env['OS_USERNAME'],
                'domain': {'name': 'Default'},
                'password': env['OS_PASSWORD']}}},
            'scope': {'project': {'name': env['OS_PROJECT_NAME'],
                                  'domain': {'name': 'Default'}}}}}
        req = urllib.request.Request(
            self.sim.auth_url + '/v3/auth/tokens',
            data=json.dumps(body).encode(), method='POST',
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers['X-Subject-Token']

    def api_create_image(self, server_id, name='snap'):
        """POST createImage straight to the simulator; return the image ID.

        Tests of ``watch`` use it so the watch can start right after.
        """
        base_url = self.sim.auth_url.rsplit('/identity', 1)[0]
        req = urllib.request.Request(
            '%s/compute/v2.1/servers/%s/action' % (base_url, server_id),
            data=json.dumps({'createImage': {'name': name}}).encode(),
            method='POST',
            headers={'Content-Type': 'application/json',
                     'X-Auth-Token': self._token(),
                     'OpenStack-API-Version': 'compute 2.45'})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read().decode())['image_id']

    def image_count(self):
        return len(self.control.state()['images'])

    # -- the simulator's records ------------------------------------------

    def segments(self, server_id):
        """[(task_state, start, end)] from the simulator's own log.

        Times are the simulator's monotonic clock; the last segment has
        end None (still going).
        """
        log = [e for e in self.task_log(server_id)]
        result = []
        for entry in log:
            if result:
                state, start, _end = result[-1]
                result[-1] = (state, start, entry['monotonic'])
            result.append((entry['new'], entry['monotonic'], None))
        return result

    def server_polls(self, delay=0.0, key=SERVER_GET):
        """Times at which a successful server GET read the state.

        A request delayed by a 'delay' fault reads the state after the
        delay, so ``delay`` is added to those.
        """
        times = []
        for entry in self.control.requests()['requests']:
            if entry['key'] != key or entry['status'] != 200:
                continue
            if entry['fault'] not in (None, 'delay'):
                continue    # a malformed answer showed no state
            at = entry['monotonic']
            if entry['fault'] == 'delay':
                at += delay
            times.append(at)
        return times

    def required_states(self, server_id, interval, delay=0.0,
                        key=SERVER_GET, only=IMAGE_TASK_STATES + (None,),
                        after=None):
        """Task states that nobody may miss, in order.

        A state is required when it lasted at least two poll intervals
        and a successful poll of the server fell inside it (with a margin
        at both ends): the client saw it, so the output must show it.
        ``after`` drops the states that ended before that time (before the
        watch started).
        """
        polls = self.server_polls(delay, key)
        wanted = []
        for state, start, end in self.segments(server_id):
            if state not in only:
                continue
            if after is not None and end is not None and end <= after:
                continue
            stop = end if end is not None else float('inf')
            if stop - start < 2 * interval:
                continue
            if any(start + MARGIN <= t <= stop - MARGIN for t in polls):
                wanted.append(state)
        return wanted

    def assert_subsequence(self, wanted, seen, what):
        position = 0
        for item in wanted:
            try:
                position = seen.index(item, position) + 1
            except ValueError:
                self.fail('%s: %r missing (or out of order) in the output '
                          '%r; the simulator log requires %r' % (
                              what, item, seen, wanted))

    def assert_watch_complete(self, rows, server_id, interval, delay=0.0,
                              first_poll=None):
        """Watch rows: nothing lost, nothing counted twice."""
        mine = [r for r in rows if r['Server ID'] == server_id]
        self.assertTrue(mine, 'no row for server %s' % server_id)
        keys = [(r['Status'], r['VM State'], r['Task State'],
                 r['Power State']) for r in mine]
        for before, after in zip(keys, keys[1:]):
            self.assertNotEqual(before, after,
                                'a change was reported twice: %r' % (keys,))
        seen = [r['Task State'] for r in mine]
        wanted = self.required_states(server_id, interval, delay,
                                      after=first_poll)
        self.assert_subsequence(wanted, seen, 'watch of %s' % server_id)
        return wanted

    def assert_phases_complete(self, output, server_id, interval,
                               delay=0.0):
        """--wait-phase output: each required phase is in phase_durations"""
        seen = list(output['phase_durations'])
        wanted = []
        for state in self.required_states(server_id, interval, delay,
                                          only=IMAGE_TASK_STATES):
            phase = phases.phase_of(state)
            if not wanted or wanted[-1] != phase:
                wanted.append(phase)
        self.assert_subsequence(wanted, seen, 'phases of %s' % server_id)
        return wanted

    def first_request_after(self, when, key=SERVER_GET):
        for entry in self.control.requests()['requests']:
            if entry['key'] == key and entry['monotonic'] > when:
                return entry
        return None

    def stderr_lines(self, result):
        return [line for line in result.stderr.splitlines()
                if line.strip()]
