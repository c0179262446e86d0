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

"""A tiny urllib client of the simulator's /_sim control endpoint."""

import json
import time
import urllib.error
import urllib.request


class ControlError(Exception):
    """The control endpoint answered with an error."""

    def __init__(self, status, body):
        super().__init__('%s: %s' % (status, body))
        self.status = status
        self.body = body


class ControlClient:
    """Call the control endpoint, e.g. http://127.0.0.1:PORT/_sim."""

    def __init__(self, control_url, timeout=10.0):
        self.url = control_url.rstrip('/')
        self.timeout = timeout

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode() or 'null')
        except urllib.error.HTTPError as exc:
            raise ControlError(exc.code, exc.read().decode())

    def state(self):
        return self._call('GET', '/state')

    def create_server(self, name='sim', **fields):
        """Create one server at once (active unless told otherwise).

        Fields include driver (its image-create order, see drivers.py)
        and volume_backed.
        """
        fields['name'] = name
        return self._call('POST', '/servers', fields)['server']

    def create_servers(self, count, prefix='w', **fields):
        """Create count servers at once, named prefix1, prefix2...

        ACTIVE at once (build=True: through BUILD); 5,000 take about a
        second. Other fields as create_server.
        """
        fields.update(count=count, prefix=prefix)
        return self._call('POST', '/servers', fields)['servers']

    def set_server_state(self, server_id, **fields):
        return self._call('POST', '/servers/%s/state' % server_id,
                          fields)['server']

    def server(self, server_id):
        """A server as an admin sees it, with the simulator's fields."""
        try:
            return self._call('GET', '/servers/%s' % server_id)['server']
        except ControlError as exc:
            if exc.status == 400:
                return None
            raise

    def image(self, image_id):
        for image in self.state()['images']:
            if image['id'] == image_id:
                return image
        return None

    def volume(self, volume_id):
        """A Cinder volume as an admin sees it (microversion 3.71)."""
        for volume in self.state()['volumes']:
            if volume['id'] == volume_id:
                return volume
        return None

    def volume_snapshots(self, volume_id=None):
        """The Cinder snapshots (of one volume), as an admin sees them."""
        return [s for s in self.state()['volume_snapshots']
                if volume_id in (None, s['volume_id'])]

    def delete_server(self, server_id):
        return self._call('POST', '/servers/%s/delete' % server_id, {})

    def delete_image(self, image_id):
        return self._call('POST', '/images/%s/delete' % image_id, {})

    def configure(self, durations=None, **flags):
        """Set durations, token_lifetime, flags and the default driver.

        Flags: hide_ext_sts, old_nova_actions; driver: the Nova virt
        driver order of servers created without one (see drivers.py).
        """
        if durations:
            flags['durations'] = durations
        return self._call('POST', '/config', flags)

    def add_fault(self, phase, kind, operation='any', count=1, **extra):
        """Add an operation fault, e.g. ('uploading', 'driver_error')."""
        extra.update(phase=phase, kind=kind, operation=operation,
                     count=count)
        return self._call('POST', '/faults', {'operation_faults': [extra]})

    def add_http_fault(self, kind, count=1, **rule):
        """Add an HTTP fault, e.g. ('status', code=503, endpoint=...)."""
        rule.update(kind=kind, count=count)
        return self._call('POST', '/faults', {'http_faults': [rule]})

    def clear_faults(self):
        return self._call('DELETE', '/faults')

    def revoke_tokens(self):
        return self._call('POST', '/tokens/revoke', {})['revoked']

    def log(self, since=0, resource_id=None):
        query = '?since=%d' % since
        if resource_id:
            query += '&id=%s' % resource_id
        return self._call('GET', '/log' + query)['log']

    def hold(self, step, server=None):
        """Hold the operations (of server: id or name) reaching step."""
        return self._call('POST', '/hold', {'step': step, 'server': server})

    def release(self, step=None, server=None):
        """Release held steps (omit both: all); return how many resumed."""
        return self._call('POST', '/release',
                          {'step': step, 'server': server})['released']

    def wait_held(self, step, server=None, timeout=30):
        """Poll until an operation (of server) is held at step."""
        return self.wait_for(lambda state: any(
            h['step'] == step and server in (None, h['server_id'],
                                             h['server_name'])
            for h in state['held']), timeout)

    def captures(self, server_id=None):
        """The disk copies recorded so far (of one server)."""
        query = '?server_id=%s' % server_id if server_id else ''
        return self._call('GET', '/captures' + query)['captures']

    def requests(self):
        return self._call('GET', '/requests')

    def request_counts(self):
        return self.requests()['counts']

    def reset_requests(self):
        return self._call('POST', '/requests/reset', {})

    def secrets(self):
        return self._call('GET', '/secrets')

    def secret_values(self):
        """Every password and token the simulator knows, for leak checks."""
        data = self.secrets()
        return data['passwords'] + data['tokens']

    def wait_for(self, predicate, timeout=10.0, interval=0.02):
        """Poll state() until predicate(state) is true; return the state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError('simulator state condition not met')
            time.sleep(interval)

    def wait_task_state(self, server_id, task_state, timeout=10.0):
        return self.wait_for(
            lambda s: any(v['id'] == server_id
                          and v['OS-EXT-STS:task_state'] == task_state
                          for v in s['servers']), timeout)
