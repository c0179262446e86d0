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
compare the output with the simulator's own task-state log, and wait for
events (a step held by the simulator, requests in its log), never for a
fixed time (issue 13)."""

import json
import time
import urllib.request

from osc_snapphase import phases
from osc_snapphase.tests.functional import base

SERVER_GET = 'GET /compute/v2.1/servers/{id}'
TOKENS = 'POST /identity/v3/auth/tokens'
IMAGE_TASK_STATES = ('image_snapshot_pending', 'image_snapshot',
                     'image_backup', 'image_pending_upload',
                     'image_uploading')
WAIT = base.WAIT


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

    # -- waiting for events -------------------------------------------------

    def wait_log(self, predicate, what, timeout=WAIT):
        """Wait until predicate(requests) holds for the request log.

        The log is the simulator's list of API requests, oldest first;
        return predicate's (true) value.
        """
        deadline = time.monotonic() + timeout
        while True:
            requests = self.control.requests()['requests']
            found = predicate(requests)
            if found:
                return found
            if time.monotonic() > deadline:
                self.fail('waited %ss for %s; requests: %s' % (
                    timeout, what, [(r['key'], r['status'], r['fault'])
                                    for r in requests][-30:]))
            time.sleep(0.05)

    def log_size(self):
        return len(self.control.requests()['requests'])

    @staticmethod
    def good_poll(entry, server_id):
        """A GET of the server that was answered with its state."""
        return (entry['key'] == SERVER_GET and entry['status'] == 200
                and entry['fault'] is None
                and entry['path'].rstrip('/').endswith(server_id))

    def wait_polls(self, server_id, polls=1, since=0):
        """Wait for ``polls`` answered GETs of the server.

        Counted from ``since``, an index in the request log; returns the
        log index after them.
        """
        def enough(requests):
            seen = [i for i, r in enumerate(requests)
                    if i >= since and self.good_poll(r, server_id)]
            return len(seen) >= polls and seen[polls - 1] + 1
        return self.wait_log(enough, '%d answered GETs of server %s' % (
            polls, server_id))

    def release_after_seen(self, step, server_id, polls=2):
        """Release ``step`` once the CLI has polled the held server.

        Waits until the server's operation is held at ``step`` and the
        CLI has read the server ``polls`` times since (so it has seen the
        held state), then releases that step.
        """
        self.control.wait_held(step, server=server_id, timeout=WAIT)
        self.wait_polls(server_id, polls, since=self.log_size())
        self.control.release(step, server=server_id)

    def fault_while_held(self, step, server_id, kind, count=1,
                         recover=True, **rule):
        """Fault the CLI's polls while the operation is held at step.

        Waits until the operation is held, adds the HTTP fault ``kind``
        (``count`` times; None: for ever) on the GETs of one server, then
        (recover=True) waits until the CLI met the fault ``count`` times
        and read the server successfully after it, and releases the step.
        Returns the index in the request log where the fault began.
        """
        self.control.wait_held(step, server=server_id, timeout=WAIT)
        since = self.log_size()
        rule.setdefault('endpoint', 'compute')
        rule.setdefault('path', r'/servers/[0-9a-f-]{36}$')
        rule.setdefault('method', 'GET')
        self.control.add_http_fault(kind, count, **rule)
        if recover:
            def recovered(requests):
                faulted = [i for i, r in enumerate(requests)
                           if i >= since and r['fault'] == kind]
                return len(faulted) >= count and any(
                    self.good_poll(r, server_id)
                    for r in requests[faulted[-1] + 1:])
            self.wait_log(recovered, '%d %s faults, then an answered GET '
                          'of server %s' % (count, kind, server_id))
            self.control.release(step, server=server_id)
        return since

    def revoke_while_held(self, step, server_id):
        """Revoke every token while the CLI polls a held step.

        Waits until the operation is held at ``step`` and the CLI has read
        the server once since (it holds a token), revokes the tokens, waits
        until an API request was refused with 401 (the revoked token was
        used) and the server was read successfully after it, then releases
        the step. Returns the number of token requests before the revoke.
        """
        self.control.wait_held(step, server=server_id, timeout=WAIT)
        self.wait_polls(server_id, 1, since=self.log_size())
        tokens = self.control.request_counts().get(TOKENS, 0)
        since = self.log_size()
        self.assertGreaterEqual(self.control.revoke_tokens(), 1)

        def renewed(requests):
            refused = [i for i, r in enumerate(requests)
                       if i >= since and r['service'] != 'keystone'
                       and r['status'] == 401]
            return refused and any(self.good_poll(r, server_id)
                                   for r in requests[refused[0] + 1:])
        self.wait_log(renewed, 'a request refused with 401, then an '
                      'answered GET of server %s' % server_id)
        self.control.release(step, server=server_id)
        return tokens

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

    def server_polls(self, server_id):
        """Arrival times of the GETs of the server answered with it.

        The simulator's monotonic clock; a GET delayed by a 'delay' fault
        counts (it reads the state after the delay, still before its
        answer); a malformed answer showed no state.
        """
        return [entry['monotonic']
                for entry in self.control.requests()['requests']
                if entry['key'] == SERVER_GET and entry['status'] == 200
                and entry['fault'] in (None, 'delay')
                and entry['path'].rstrip('/').endswith(server_id)]

    def required_states(self, server_id, only=IMAGE_TASK_STATES + (None,),
                        after=None):
        """Task states that the CLI cannot have missed, in order.

        A state is required when two answered GETs of the server arrived
        while it lasted: the CLI sends one request at a time, so the first
        was answered before the second arrived, and the state it read
        (under the simulator's lock, after the arrival) was this one. No
        margin and no timing: a starved simulator or CLI only makes fewer
        states required. It assumes one CLI polling the server: ``after``
        drops the states that ended before that time (before a second CLI
        started, or before the watch started).
        """
        polls = self.server_polls(server_id)
        wanted = []
        for state, start, end in self.segments(server_id):
            if state not in only:
                continue
            if after is not None and end is not None and end <= after:
                continue
            stop = end if end is not None else float('inf')
            if sum(1 for t in polls if start <= t <= stop) >= 2:
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

    def assert_watch_complete(self, rows, server_id, since=None):
        """Watch rows: nothing lost, nothing counted twice.

        ``since`` (time.monotonic(), the simulator's clock too): the
        ``after`` of :meth:`required_states`.
        """
        mine = [r for r in rows if r['Server ID'] == server_id]
        self.assertTrue(mine, 'no row for server %s' % server_id)
        # A row is printed when the server or the capture state changes
        # (the image going saving while the task state stays, say).
        keys = [(r['Status'], r['VM State'], r['Task State'],
                 r['Power State'], r['Capture']) for r in mine]
        for before, after in zip(keys, keys[1:]):
            self.assertNotEqual(before, after,
                                'a change was reported twice: %r' % (keys,))
        for row in mine:
            self.assertIn(row['Capture'], phases.CAPTURE_STATES, row)
        seen = [r['Task State'] for r in mine]
        wanted = self.required_states(server_id, after=since)
        self.assert_subsequence(wanted, seen, 'watch of %s' % server_id)
        return wanted

    def assert_phases_complete(self, output, server_id):
        """--wait-phase output: each required phase is in phase_durations"""
        seen = list(output['phase_durations'])
        wanted = []
        for state in self.required_states(server_id,
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
