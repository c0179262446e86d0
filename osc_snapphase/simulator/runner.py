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

import contextlib
import ipaddress
import logging
import os
import shlex
import tempfile
import threading

import yaml

try:
    import fcntl
except ImportError:   # pragma: no cover - Windows
    fcntl = None

from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import glance
from osc_snapphase.simulator import nova
from osc_snapphase.simulator import server as server_mod

LOG = logging.getLogger(__name__)
#: The first line of the openrc files a simulator writes. An openrc
#: without it is someone else's (a DevStack openrc...): never overwritten.
OPENRC_MARK = ('# Written by python -m osc_snapphase.simulator; removed '
               'when it stops.\n')


class NotLoopback(ValueError):
    """The simulator refuses to listen on a non-loopback address."""


class StateError(Exception):
    """The state files cannot be written (exit status 1)."""

    exit_code = 1


class StateConflict(StateError):
    """A file the simulator would write is someone else's (status 2)."""

    exit_code = 2


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

        Clouds of another name in an existing clouds.yaml are kept; a
        symlinked clouds.yaml is written through (it stays a link). An
        openrc that a simulator did not write (its first line is not
        OPENRC_MARK) is never overwritten: StateConflict. A clouds.yaml
        that cannot be read as one: StateError. Nothing is written then.
        """
        try:
            os.makedirs(state_dir, exist_ok=True)
        except OSError as exc:
            raise StateError('cannot make the state directory %s: %s'
                             % (state_dir, exc))
        openrcs = [(os.path.join(state_dir, name), OPENRC_MARK
                    + self.openrc(user))
                   for name, user in (('openrc', 'demo'),
                                      ('openrc-admin', 'admin'))]
        for path, _text in openrcs:
            _check_openrc(path)
        clouds_yaml = os.path.join(state_dir, 'clouds.yaml')
        try:
            with _locked(clouds_yaml):
                data = _load(clouds_yaml)
                data['clouds'].update(self.clouds())
                write_file(clouds_yaml, _dump(data))
            self._clouds_yaml = clouds_yaml
            for path, text in openrcs:
                write_file(path, text)
                self._written.append((path, text))
        except OSError as exc:
            raise StateError('cannot write into %s: %s' % (state_dir, exc))

    def remove_state(self):
        """Undo write_state: our clouds leave clouds.yaml, files go.

        Other clouds stay; the file goes when none is left (a symlink
        stays). Our clouds and openrc files are removed only while they
        still are this simulator's. Never raises: what cannot be undone
        is logged.
        """
        for path, text in self._written:
            _remove_own(path, text)
        self._written = []
        path, self._clouds_yaml = self._clouds_yaml, None
        if path is None:
            return
        try:
            with _locked(path):
                data = _load(path)
                clouds = data['clouds']
                ours = [name for name in self.clouds()
                        if (clouds.get(name) or {}).get('auth', {}).get(
                            'auth_url') == self.auth_url]
                for name in ours:
                    del clouds[name]
                if not ours:
                    return
                if clouds or set(data) - {'clouds'} or os.path.islink(path):
                    write_file(path, _dump(data))
                else:
                    _remove(path)
        except FileNotFoundError:
            pass    # the state directory went: our clouds with it
        except Exception as exc:
            LOG.warning('the clouds %s of %s are left in %s: %s',
                        ', '.join(self.clouds()), self.auth_url, path, exc)


def _check_openrc(path):
    """Raise StateConflict unless path is absent or a simulator's openrc."""
    try:
        with open(path) as stream:
            first = stream.readline()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise StateConflict('%s exists and cannot be read (%s); refusing '
                            'to overwrite it: choose another --state-dir'
                            % (path, exc))
    if first != OPENRC_MARK:
        raise StateConflict('%s exists and was not written by the '
                            'simulator; refusing to overwrite it: choose '
                            'another --state-dir' % path)


@contextlib.contextmanager
def _locked(path):
    """Hold an exclusive lock on the directory of path's real file.

    Simulators sharing a directory take turns at clouds.yaml, so that
    none loses the clouds of another. The lock is flock(2) on the
    directory itself, which leaves no lock file behind; where the file
    system has no such locks, it goes on without.
    """
    fd = os.open(os.path.dirname(os.path.realpath(path)), os.O_RDONLY)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass
        yield
    finally:
        os.close(fd)


def _load(path):
    """The mapping of a clouds.yaml ({'clouds': {}} when it is absent)."""
    try:
        with open(path) as stream:
            data = yaml.safe_load(stream)
    except FileNotFoundError:
        data = None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise StateError('cannot read %s: %s' % (path, exc))
    data = {} if data is None else data
    if not isinstance(data, dict) or not isinstance(
            data.get('clouds') or {}, dict):
        raise StateError('%s is not a clouds.yaml (a mapping with a '
                         'mapping of clouds); it was not changed' % path)
    data['clouds'] = data.get('clouds') or {}
    return data


def _dump(data):
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def write_file(path, text):
    """Replace path's real file atomically, readable by its owner only.

    A symlink stays a symlink; the temporary file has a name of its own
    (another simulator may write the same file).
    """
    real = os.path.realpath(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(real),
                               suffix='.tmp', dir=os.path.dirname(real))
    try:
        with os.fdopen(fd, 'w') as stream:
            stream.write(text)
        os.replace(tmp, real)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _remove_own(path, text):
    """Remove path if it still holds text (what this simulator wrote)."""
    try:
        with open(path) as stream:
            if stream.read() != text:
                return
        os.remove(path)
    except (OSError, UnicodeDecodeError):
        pass
