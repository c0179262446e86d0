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

"""Base class of the functional tests: the real ``openstack`` executable
run as a subprocess against the bundled simulator on 127.0.0.1.

It is the scenarios' cloud interface (:mod:`osc_snapphase.tests.scenarios`)
for the simulator: holds, faults and counters of its control endpoint.
"""

import json
import time
import urllib.error
import urllib.request

from osc_snapphase.tests import cli
from osc_snapphase.tests import fixture
from osc_snapphase.tests.scenarios import base as scenario_base

OPENSTACK = cli.executable()
# The simulator's request key of one server's GET (what a watch polls).
GET_SERVER = 'GET /compute/v2.1/servers/{id}'
WAIT = scenario_base.WAIT

# Short but realistic phases: each longer than two fast polls.
DURATIONS = {
    'pending': 0.3,
    'snapshot': 1.5,
    'pending_upload': 0.8,
    'uploading': 3.0,
}
#: The scenarios' steps as the simulator names them (a backup's
#: image_backup step is 'backup').
SIM_STEPS = {'pending': ('pending',), 'snapshot': ('snapshot', 'backup'),
             'pending_upload': ('pending_upload',),
             'upload': ('uploading',)}
SIM_FAILURES = {'error': 'driver_error', 'not_running': 'stuck'}
MICROVERSION = 'compute 2.96'

Result = cli.Result


class TestCase(scenario_base.CLITestCase):
    """Starts a simulator per test; runs ``openstack`` against it."""

    durations = DURATIONS
    token_lifetime = None
    #: The image a scenario boots a server from.
    BOOT_IMAGE = 'cirros'

    def setUp(self):
        super().setUp()
        self.sim = self.useFixture(fixture.SimulatorFixture(
            durations=dict(self.durations),
            token_lifetime=self.token_lifetime))
        self.control = self.sim.control
        self.admin_cloud = self.sim.cloud_name + '-admin'

    def environ(self, cloud=None, env=None):
        # As a user's shell has it: no OS_* left over, and stdout buffered
        # as Python buffers a pipe (PYTHONUNBUFFERED would hide a missing
        # flush of live output).
        return cli.environ(extra=dict(self.sim.cloud_env(cloud),
                                      **(env or {})))

    def check_result(self, result, expect):
        for secret in self.control.secret_values():
            self.assertNotIn(secret, result.stdout + result.stderr,
                             'a secret leaked into the output')
        super().check_result(result, expect)

    _reap = staticmethod(cli.reap)

    def create_server(self, name='vm1', **fields):
        return self.control.create_server(name, **fields)

    def task_log(self, server_id):
        """The simulator's own record of task-state changes of a server."""
        return [entry for entry in self.control.log(resource_id=server_id)
                if entry['resource'] == 'server'
                and entry['field'] == 'task_state']

    # -- helpers for tests that watch a running openstack ------------------

    def wait_requests(self, key, count=1, timeout=WAIT):
        """Wait for ``count`` requests of a key; return them.

        The key as the simulator counts it, e.g.
        'GET /compute/v2.1/servers/{id}'.
        """
        deadline = time.monotonic() + timeout
        while True:
            requests = [r for r in self.control.requests()['requests']
                        if r['key'] == key]
            if len(requests) >= count:
                return requests
            if time.monotonic() > deadline:
                self.fail('fewer than %d requests %s within %ss'
                          % (count, key, timeout))
            time.sleep(0.05)

    # -- waiting for events, never for a fixed time -----------------------

    def hold(self, step, server=None):
        """Stop operations at ``step`` until released.

        See the simulator's /_sim/hold; everything is released at the end
        of the test in any case.
        """
        self.control.hold(step, server=server)
        self.addCleanup(self._release_all)

    def _release_all(self):
        try:
            self.control.release()
        except Exception:   # the simulator may already be gone
            pass

    def request_count(self, key):
        return sum(1 for r in self.control.requests()['requests']
                   if r['key'] == key)

    def release_after_polls(self, step, polls=3, server=None,
                            timeout=WAIT, proc=None):
        """Release ``step`` once the CLI has seen it held.

        Waits until an operation (of ``server``, an ID or a name) is held
        at ``step`` (the simulator's name) and the CLI (``proc``, default
        the one this test started last) has read a server ``polls`` more
        times (:meth:`wait_cli_polls`), then releases it; fails at once,
        with the CLI's output, if the CLI ends first. The CLI's own
        lookup of the server may be the first read counted: the default of
        3 makes sure a poll has been answered in the step. Returns the
        release time (time.time()).
        """
        proc = proc or self.last_started

        def held():
            return any(h['step'] == step and server in (
                None, h['server_id'], h['server_name'])
                for h in self.control.state()['held'])
        self.wait_cli(proc, held, 'an operation held at %s' % step,
                      timeout)
        self.wait_cli_polls(proc, None, polls, timeout)
        released = time.time()
        self.control.release(step, server=server)
        return released

    def image_create(self, server, name='snap', *extra, backup=False):
        """Start an image (or daily backup) of a server with the CLI.

        Returns the image as the CLI printed it (a dict).
        """
        if backup:
            args = ['server', 'backup', 'create', server, '--name', name,
                    '--type', 'daily', '--rotate', '2']
        else:
            args = ['server', 'image', 'create', server, '--name', name]
        return self.openstack(*(args + list(extra) + ['-f', 'json'])).json()

    def changed_at(self, server_id, old, new=None):
        """Time of a server's first task-state change out of ``old``.

        Wall clock (time.time()) as the simulator logged it; the change
        must go into ``new`` if given.
        """
        for entry in self.task_log(server_id):
            if entry['old'] == old and (new is None or entry['new'] == new):
                return entry['time']
        self.fail('no task-state change of %s out of %s (log: %s)'
                  % (server_id, old, self.task_log(server_id)))

    # -- the scenarios' cloud interface ---------------------------------------

    def boot(self, name='vm1'):
        return self.create_server(name)['id']

    def script(self, server, hold=(), fail_in=None, failure='error'):
        for step in hold:
            for name in SIM_STEPS[step]:
                self.hold(name, server)
        if fail_in is not None:
            for name in SIM_STEPS[fail_in]:
                self.control.add_fault(name, SIM_FAILURES[failure],
                                       server=server)

    def wait_held(self, step, server=None):
        """Wait until held at ``step``.

        Fails at once if the operation of ``server`` has ended.
        """
        names = SIM_STEPS[step]

        def held(state):
            if any(h['step'] in names and server in (
                    None, h['server_id'], h['server_name'])
                    for h in state['held']):
                return 'held'
            # Ended: its image exists (or existed), no operation runs.
            if server and not any(
                    op['server_id'] == server
                    for op in state['operations']) and any(
                    i['properties'].get('instance_uuid') == server
                    for i in state['images'] + state['deleted_images']):
                return 'ended'
        found = self.wait_for(lambda: held(self.control.state()), WAIT,
                              'an operation held at %s' % step)
        if found != 'held':
            self.fail('the operation of %s ended before step %s (task '
                      'states: %s)' % (server, step, [
                          e['new'] for e in self.task_log(server)]))

    def release(self, step=None, server=None):
        for name in SIM_STEPS[step] if step else (None,):
            self.control.release(name, server=server)

    def operation_running(self, server_id):
        return any(op['server_id'] == server_id
                   for op in self.control.state()['operations'])

    def operation_ended(self, server_id, outcome='ok'):
        self.wait_for(lambda: not self.operation_running(server_id), WAIT,
                      'the end of the operation of %s' % server_id)

    def _api(self, method, path, body=None, admin=True):
        """Call the simulator's Nova API; (status, decoded body)."""
        env = self.sim.admin_env if admin else self.sim.env
        auth = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': env['OS_USERNAME'], 'domain': {'name': 'Default'},
                'password': env['OS_PASSWORD']}}},
            'scope': {'project': {'name': env['OS_PROJECT_NAME'],
                                  'domain': {'name': 'Default'}}}}}
        token = self._request('POST', self.sim.auth_url + '/v3/auth/tokens',
                              auth)[2]['X-Subject-Token']
        base_url = self.sim.auth_url.rsplit('/identity', 1)[0]
        status, body, _headers = self._request(
            method, base_url + '/compute/v2.1' + path, body,
            {'X-Auth-Token': token, 'OpenStack-API-Version': MICROVERSION})
        return status, body

    @staticmethod
    def _request(method, url, body=None, headers=None):
        req = urllib.request.Request(
            url, method=method, headers=dict(
                headers or {}, **{'Content-Type': 'application/json'}),
            data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                data = resp.read()
                status, headers = resp.status, resp.headers
        except urllib.error.HTTPError as exc:
            data, status, headers = exc.read(), exc.code, exc.headers
        return status, json.loads(data) if data else None, headers

    def create_image(self, server_id, name='snap1'):
        status, body = self._api('POST', '/servers/%s/action' % server_id,
                                 {'createImage': {'name': name}})
        self.assertEqual(202, status, body)
        return body['image_id']

    def task_state(self, server_id):
        server = self.control.server(server_id)
        return server and server['OS-EXT-STS:task_state']

    def server_gone(self, server_id):
        return self._api('GET', '/servers/%s' % server_id)[0] == 404

    def images_of(self, server_id):
        return [i for i in self.control.state()['images']
                if i['properties'].get('instance_uuid') == server_id]

    def poll_mark(self):
        return len(self.control.requests()['requests'])

    def cli_polls(self, server_id, mark):
        """GETs of one server (None: of any) since ``mark``."""
        return sum(1 for r in self.control.requests()['requests'][mark:]
                   if r['key'] == GET_SERVER and (
                       server_id is None or
                       r['path'].rstrip('/').endswith(server_id)))

    def api_get(self, path):
        status, body = self._api('GET', path)
        self.assertEqual(200, status, body)
        return body

    def http_fault(self, code, count, path=None, retry_after=None):
        rule = {'code': code, 'endpoint': 'compute'}
        if path:
            rule['path'] = path
        if retry_after is not None:
            rule['retry_after'] = retry_after
        self.control.add_http_fault('status', count=count, **rule)

    def http_faulted(self, code):
        return sum(1 for r in self.control.requests()['requests']
                   if r['fault'] and r['status'] == code)
