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

"""A fixtures.Fixture that runs the simulator as a subprocess."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import fixtures

from osc_snapphase.simulator import client

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class SimulatorFixture(fixtures.Fixture):
    """Start python -m osc_snapphase.simulator and stop it on cleanup.

    After setUp: auth_url, control_url, control (a ControlClient),
    state_dir, clouds_yaml (path), env (OS_* variables of the member
    user), admin_env, cloud_name, pid and cloud_env(cloud) for
    OS_CLIENT_CONFIG_FILE plus OS_CLOUD. driver is the Nova virt
    driver order (xenserver here; None: the command's libvirt-file).
    """

    def __init__(self, durations=None, token_lifetime=None,
                 cloud_name='snapsim', extra_args=(), startup_timeout=240.0,
                 driver='xenserver'):
        super().__init__()
        self.durations = durations or {}
        self.token_lifetime = token_lifetime
        self.cloud_name = cloud_name
        self.extra_args = list(extra_args)
        self.driver = driver
        self.startup_timeout = startup_timeout
        self.process = None

    def _setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix='snapsim-')
        self.addCleanup(self._remove_dir)
        ready = os.path.join(self.state_dir, 'ready.json')
        cmd = [sys.executable, '-m', 'osc_snapphase.simulator',
               '--state-dir', self.state_dir, '--ready-file', ready,
               '--cloud-name', self.cloud_name,
               # GET /_sim/secrets, for the tests' leak checks.
               '--serve-secrets']
        if self.driver:
            cmd += ['--driver', self.driver]
        if self.durations:
            cmd += ['--durations', ','.join(
                '%s=%s' % item for item in self.durations.items())]
        if self.token_lifetime is not None:
            cmd += ['--token-lifetime', str(self.token_lifetime)]
        cmd += self.extra_args
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            filter(None, [PACKAGE_ROOT, env.get('PYTHONPATH')]))
        self.log_path = os.path.join(self.state_dir, 'simulator.log')
        log = open(self.log_path, 'wb')
        self.addCleanup(log.close)
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=log, env=env,
            stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop)
        info = self._wait_ready(ready)
        self.pid = info['pid']
        self.auth_url = info['auth_url']
        self.control_url = info['control_url']
        self.control = client.ControlClient(self.control_url)
        self.clouds_yaml = os.path.join(self.state_dir, 'clouds.yaml')
        self.env = self._read_openrc('openrc')
        self.admin_env = self._read_openrc('openrc-admin')

    def _wait_ready(self, ready):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('simulator exited with %s: %s' % (
                    self.process.returncode, self._log_text()))
            if os.path.exists(ready):
                with open(ready) as stream:
                    return json.load(stream)
            time.sleep(0.02)
        raise RuntimeError('simulator not ready after %ss: %s' % (
            self.startup_timeout, self._log_text()))

    def _log_text(self):
        with open(self.log_path, errors='replace') as stream:
            return stream.read()[-2000:]

    def _read_openrc(self, name):
        env = {}
        with open(os.path.join(self.state_dir, name)) as stream:
            for line in stream:
                if not line.startswith('export '):
                    continue
                key, _sep, value = line.strip()[len('export '):].partition(
                    '=')
                env[key] = value.strip("'")
        return env

    def cloud_env(self, cloud=None):
        """Variables that select a cloud of the written clouds.yaml."""
        return {'OS_CLIENT_CONFIG_FILE': self.clouds_yaml,
                'OS_CLOUD': cloud or self.cloud_name}

    def stop(self):
        """Send SIGTERM, wait, then SIGKILL if needed; return the code."""
        if self.process is None or self.process.poll() is not None:
            return self.process and self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def _remove_dir(self):
        shutil.rmtree(self.state_dir, ignore_errors=True)
