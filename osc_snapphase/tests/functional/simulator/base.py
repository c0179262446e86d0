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

"""Base test case that runs the simulator in-process on loopback."""

import json
import time
import urllib.error
import urllib.request

import testtools

from osc_snapphase.simulator import client
from osc_snapphase.simulator import runner

FAST = {'build': 0.02, 'delete': 0.02, 'power': 0.02, 'pending': 0.03,
        'snapshot': 0.05, 'backup': 0.05, 'pending_upload': 0.03,
        'uploading': 0.08, 'volume_snapshot': 0.05, 'copy': 0.05,
        'bounce': 2, 'rbd_snapshot': 0.03, 'flatten': 0.05}


class Reply:
    """Status, headers and decoded body of one API call."""

    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.body = json.loads(raw.decode()) if raw else None
        except ValueError:
            self.body = None


class SimulatorTestCase(testtools.TestCase):
    """Start a fast simulator per test and talk to it with urllib."""

    durations = FAST

    def setUp(self):
        super().setUp()
        self.sim = runner.Simulator(durations=self.durations).start()
        self.addCleanup(self.sim.stop)
        self.base = self.sim.cloud.base_url
        self.control = client.ControlClient(self.sim.control_url)
        self._tokens = {}

    def call(self, method, path, body=None, token=None, headers=None,
             user='demo'):
        if token is None and not path.startswith('/identity'):
            token = self.token(user)
        hdrs = {'Content-Type': 'application/json'}
        if token:
            hdrs['X-Auth-Token'] = token
        hdrs.update(headers or {})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Reply(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read())

    def authenticate(self, user='demo', password=None):
        record = self.sim.cloud.users[user]
        return self.call('POST', '/identity/v3/auth/tokens', {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': user, 'domain': {'name': 'Default'},
                'password': password or record['password']}}},
            'scope': {'project': {'name': record['project'],
                                  'domain': {'name': 'Default'}}}}})

    def token(self, user='demo'):
        if user not in self._tokens:
            reply = self.authenticate(user)
            self._tokens[user] = reply.headers['X-Subject-Token']
        return self._tokens[user]

    def create_image(self, server_id, name='snap', version='2.45',
                     user='demo'):
        return self.call(
            'POST', '/compute/v2.1/servers/%s/action' % server_id,
            {'createImage': {'name': name}}, user=user,
            headers={'OpenStack-API-Version': 'compute ' + version})

    def server_field(self, server_id, field):
        return self.control.server(server_id)[field]

    def task_states(self, server_id):
        """Task states of the server since it was first idle."""
        states = [e['new'] for e in self.control.log(resource_id=server_id)
                  if e['field'] == 'task_state']
        return states[states.index(None):]

    def image_statuses(self, image_id):
        return [e['new'] for e in self.control.log(resource_id=image_id)
                if e['field'] == 'status']

    def wait_idle(self, server_id, timeout=60.0):
        deadline = time.monotonic() + timeout
        while self.sim.cloud.ops.get(server_id) is not None:
            if time.monotonic() > deadline:
                self.fail('operation on %s did not end' % server_id)
            time.sleep(0.01)
        time.sleep(0.02)
