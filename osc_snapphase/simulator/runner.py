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

"""Assemble, start and stop the simulator; write clouds.yaml and openrc."""

import ipaddress
import os
import shlex
import threading

import yaml

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import glance
from osc_snapphase.simulator import nova
from osc_snapphase.simulator import server as server_mod


class NotLoopback(ValueError):
    """The simulator refuses to listen on a non-loopback address."""


def loopback_host(host):
    """Return the address to bind for host, or raise NotLoopback."""
    if host == 'localhost':
        return '127.0.0.1'
    try:
        address = ipaddress.ip_address(host.strip('[]'))
    except ValueError:
        raise NotLoopback('%s is not a loopback address' % host)
    if not address.is_loopback:
        raise NotLoopback('%s is not a loopback address' % host)
    return str(address)


def seed(cloud):
    """Add the flavors and the public cirros image every cloud has."""
    nova.seed_flavors(cloud)
    image = glance.new_image(
        cloud, cloud.projects['admin']['id'], 'cirros', status='queued',
        visibility='public', properties={'hw_rng_model': 'virtio',
                                         'os_distro': 'cirros'})
    glance.finish_upload(cloud, image, size=16338944)


class Simulator:
    """One simulated cloud served by a thread of this process."""

    def __init__(self, host='127.0.0.1', port=0, durations=None,
                 token_lifetime=3600.0, cloud_name='snapsim',
                 verbose=False, serve_secrets=False):
        host = loopback_host(host)
        self.cloud = cloud_mod.Cloud(host, port, durations, token_lifetime,
                                     cloud_name, serve_secrets)
        seed(self.cloud)
        self.httpd = server_mod.SimServer(self.cloud, (host, port), verbose)
        self._thread = None
        self._clouds_yaml = None
        self._written = []

    @property
    def auth_url(self):
        return self.cloud.base_url + '/identity'

    @property
    def control_url(self):
        return self.cloud.base_url + '/_sim'

    def start(self):
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={'poll_interval': 0.1},
            name='sim-http', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self.httpd.server_close()
        self.cloud.timers.stop()

    def _auth(self, user):
        record = self.cloud.users[user]
        return {'auth_url': self.auth_url, 'username': record['name'],
                'password': record['password'],
                'project_name': record['project'],
                'user_domain_name': 'Default',
                'project_domain_name': 'Default'}

    def clouds(self):
        """The clouds.yaml entries: the member's cloud and the admin's."""
        return {name: {'auth': self._auth(user),
                       'region_name': cloud_mod.REGION,
                       'interface': 'public', 'identity_api_version': 3}
                for name, user in ((self.cloud.cloud_name, 'demo'),
                                   (self.cloud.cloud_name + '-admin',
                                    'admin'))}

    def env(self, user='demo'):
        auth = self._auth(user)
        return {
            'OS_AUTH_URL': auth['auth_url'], 'OS_USERNAME': auth['username'],
            'OS_PASSWORD': auth['password'],
            'OS_PROJECT_NAME': auth['project_name'],
            'OS_USER_DOMAIN_NAME': 'Default',
            'OS_PROJECT_DOMAIN_NAME': 'Default',
            'OS_IDENTITY_API_VERSION': '3',
            'OS_REGION_NAME': cloud_mod.REGION, 'OS_INTERFACE': 'public',
        }

    def openrc(self, user='demo'):
        return ''.join('export %s=%s\n' % (k, shlex.quote(v))
                       for k, v in self.env(user).items())

    def write_state(self, state_dir):
        """Write clouds.yaml, openrc and openrc-admin into state_dir.

        Clouds of another name in an existing clouds.yaml are kept.
        """
        os.makedirs(state_dir, exist_ok=True)
        self._clouds_yaml = os.path.join(state_dir, 'clouds.yaml')
        _write(self._clouds_yaml, _merged(self._clouds_yaml, self.clouds()))
        for name, user in (('openrc', 'demo'), ('openrc-admin', 'admin')):
            path = os.path.join(state_dir, name)
            _write(path, self.openrc(user))
            self._written.append(path)

    def remove_state(self):
        """Undo write_state: our clouds leave clouds.yaml, files go.

        Other clouds stay; the file goes when none is left. Our clouds
        are removed only while they still point at this simulator.
        """
        for path in self._written:
            _remove(path)
        self._written = []
        path, self._clouds_yaml = self._clouds_yaml, None
        if path is None:
            return
        data = _load(path)
        clouds = data.get('clouds') or {}
        for name in self.clouds():
            if (clouds.get(name) or {}).get('auth', {}).get(
                    'auth_url') == self.auth_url:
                del clouds[name]
        if clouds or set(data) - {'clouds'}:
            _write(path, _dump(data))
        else:
            _remove(path)


def _load(path):
    try:
        with open(path) as stream:
            data = yaml.safe_load(stream)
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def _dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def _merged(path, clouds):
    data = _load(path)
    if not isinstance(data.get('clouds'), dict):
        data['clouds'] = {}
    data['clouds'].update(clouds)
    return _dump(data)


def _write(path, text):
    """Replace path atomically, readable by its owner only."""
    fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 0o600)
    with os.fdopen(fd, 'w') as stream:
        stream.write(text)
    os.replace(path + '.tmp', path)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
