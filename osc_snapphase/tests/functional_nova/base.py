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

"""Test base: a fresh in-process real Nova per test, ``openstack`` runner."""

import json
import os
import subprocess
import time

import fixtures
import testtools
from testtools import content

from osc_snapphase.tests.functional_nova import cinder
from osc_snapphase.tests.functional_nova import cloud
from osc_snapphase.tests.functional_nova import driver
from osc_snapphase.tests import output

IMAGE_ID = cloud.glance_fixture.GlanceFixture.image1['id']
#: The bootable volume nova's Cinder fixture knows.
BOOT_VOLUME = cinder.PhaseCinderFixture.IMAGE_BACKED_VOL
FLAVOR = 'm1.tiny'
_COMMAND_CACHE = {}


def command_available(*words):
    """True when ``openstack <words> --help`` works (a plugin command)."""
    if words not in _COMMAND_CACHE:
        result = subprocess.run(
            [cloud.find_openstack()] + list(words) + ['--help'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONWARNINGS='ignore'), timeout=120)
        _COMMAND_CACHE[words] = (result.returncode == 0 and
                                 'usage: openstack' in result.stdout)
    return _COMMAND_CACHE[words]


def option_available(option, *words):
    key = words + (option,)
    if key not in _COMMAND_CACHE:
        result = subprocess.run(
            [cloud.find_openstack()] + list(words) + ['--help'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONWARNINGS='ignore'), timeout=120)
        _COMMAND_CACHE[key] = option in result.stdout
    return _COMMAND_CACHE[key]


def result_of(clock):
    """The Result of a background CLI read by an output.AnswerClock."""
    return Result(clock.proc.argv, clock.proc.returncode, clock.stdout,
                  clock.stderr,
                  (clock.ended_at or time.time()) - clock.proc.started_wall)


class Result(object):
    def __init__(self, argv, returncode, stdout, stderr, seconds):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return ('openstack %s -> rc=%s in %.2fs\nstdout: %s\nstderr: %s'
                % (' '.join(self.argv), self.returncode, self.seconds,
                   self.stdout[-3000:], self.stderr[-3000:]))


class NovaTestCase(testtools.TestCase):
    """Each test gets its own real Nova (about 2 s to start)."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(
            int(os.environ.get('OS_TEST_TIMEOUT', 300)), gentle=True))
        self.cloud = self.useFixture(cloud.NovaCloud())
        self.addOnException(self._attach_nova_log)

    def _attach_nova_log(self, exc_info):
        lines = self.cloud.log_output().splitlines()[-400:]
        self.addDetail('nova-log', content.text_content('\n'.join(lines)))

    # -- the openstack CLI --

    def openstack(self, *args, expect=0, cloud_name='nova-admin',
                  timeout=180):
        """Run ``openstack args...``; check the exit status unless None."""
        argv = [str(a) for a in args]
        started = time.monotonic()
        proc = subprocess.run(
            [cloud.find_openstack()] + argv, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=timeout,
            env=self.cloud.make_env(cloud_name), stdin=subprocess.DEVNULL)
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr,
                        time.monotonic() - started)
        if expect is not None and proc.returncode != expect:
            self.fail('expected exit status %s: %r' % (expect, result))
        return result

    def openstack_json(self, *args, **kwargs):
        return self.openstack(*(args + ('-f', 'json')), **kwargs).json()

    def openstack_start(self, *args, cloud_name='nova-admin'):
        """Start ``openstack args...`` in the background (a Popen)."""
        argv = [str(a) for a in args]
        proc = subprocess.Popen(
            [cloud.find_openstack()] + argv, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            env=self.cloud.make_env(cloud_name))
        proc.argv = argv
        proc.started = time.monotonic()
        self.addCleanup(self._reap, proc)
        return proc

    def finish_timed(self, proc, expect=0, timeout=180):
        """Like finish(); the Result also gets ``output_at``.

        ``output_at`` is the ``time.monotonic()`` when stdout first held a
        complete JSON document (else when its last byte came; else the
        exit): when the command had answered, without the interpreter's
        exit.
        """
        try:
            out = output.read(proc, timeout, clock=time.monotonic)
        except TimeoutError as exc:
            self.fail(str(exc))
        proc.wait(timeout)
        result = Result(proc.argv, proc.returncode, out.stdout, out.stderr,
                        time.monotonic() - proc.started)
        result.output_at = out.answered_at or time.monotonic()
        if expect is not None and proc.returncode != expect:
            self.fail('expected exit status %s: %r' % (expect, result))
        return result

    def _reap(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.communicate()

    def finish(self, proc, expect=0, timeout=180):
        stdout, stderr = proc.communicate(timeout=timeout)
        result = Result(proc.argv, proc.returncode, stdout, stderr,
                        time.monotonic() - proc.started)
        if expect is not None and proc.returncode != expect:
            self.fail('expected exit status %s: %r' % (expect, result))
        return result

    # -- the cloud, directly (fast, no subprocess) --

    def boot(self, name='vm1', timeout=60):
        """Boot a server through the Nova API and wait for ACTIVE."""
        resp = self._nova_post('/servers', {'server': {
            'name': name, 'flavorRef': '1', 'imageRef': IMAGE_ID,
            'networks': 'none'}})
        server_id = resp['server']['id']
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.cloud.server(server_id)
            if (server['status'] == 'ACTIVE' and
                    server['OS-EXT-STS:task_state'] is None):
                return server_id
            self.assertNotEqual('ERROR', server['status'], server)
            time.sleep(0.05)
        self.fail('server %s did not become ACTIVE' % name)

    def boot_from_volume(self, name='vm1', volumes=(BOOT_VOLUME,),
                         timeout=180):
        """Boot a server from a volume; wait for ACTIVE.

        ``volumes[0]`` is the root disk, the others data volumes, all in
        block_device_mapping_v2 as ``openstack server create --volume``
        and ``--block-device`` send them.
        """
        bdms = [{'boot_index': 0 if i == 0 else -1, 'uuid': volume_id,
                 'source_type': 'volume', 'destination_type': 'volume'}
                for i, volume_id in enumerate(volumes)]
        resp = self._nova_post('/servers', {'server': {
            'name': name, 'flavorRef': '1', 'networks': 'none',
            'block_device_mapping_v2': bdms}})
        server_id = resp['server']['id']

        def active():
            server = self.cloud.server(server_id)
            self.assertNotEqual('ERROR', server['status'], server)
            return (server['status'] == 'ACTIVE' and
                    server['OS-EXT-STS:task_state'] is None)
        self.wait_for(active, timeout=timeout, what='%s ACTIVE' % name)
        return server_id

    def volume_plan(self, volume_id=None, **kwargs):
        """Script the next Cinder snapshots of a volume (None: all)."""
        plan = self.cloud.cinder.set_plan(cinder.SnapshotPlan(**kwargs),
                                          volume_id)
        self.addCleanup(self.cloud.cinder.release_all)
        return plan

    def in_flight_until(self, moment):
        """When the CLI's requests in flight at ``moment`` were answered.

        A CLI learns of a change only from a request sent after it; while
        the in-process cloud (CPU-starved on a loaded machine) is still
        answering an earlier one, it cannot know sooner.
        """
        return max(service.in_flight_until(moment) for service in (
            self.cloud.keystone_http, self.cloud.nova_http,
            self.cloud.glance_http, self.cloud.cinder_http))

    def wait_snapshot_reads(self, snapshot_id, reads=2, since=0.0,
                            timeout=240.0):
        """Wait until a CLI has read a Cinder snapshot ``reads`` times.

        The default timeout is long: on a loaded machine a CLI can take
        minutes to start.
        """
        self.wait_for(
            lambda: len(self.cloud.cinder_api.snapshot_reads(
                snapshot_id, since)) >= reads,
            timeout=timeout, what='%d reads of snapshot %s'
                                  % (reads, snapshot_id))

    def _nova_post(self, path, body):
        import requests
        resp = requests.post(
            self.cloud.nova_url + path, json=body, timeout=30,
            headers={'X-Auth-Token': self.cloud.admin_token,
                     'OpenStack-API-Version': 'compute %s'
                     % cloud.MICROVERSION})
        self.assertLess(resp.status_code, 300, resp.text)
        return resp.json() if resp.content else None

    def wait_polled(self, server_id, polls=2, since=None, timeout=60.0):
        """Wait until a CLI has fetched the server ``polls`` more times."""
        since = time.monotonic() if since is None else since
        path = '/v2.1/servers/%s' % server_id
        self.wait_for(
            lambda: self.cloud.nova_http.count('GET', path, since) >= polls,
            timeout=timeout, what='%d polls of %s' % (polls, path))

    def plan(self, server=None, **kwargs):
        """Script the next snapshots of ``server`` (name or id)."""
        plan = driver.set_plan(driver.SnapshotPlan(**kwargs), server)
        self.addCleanup(plan.release)
        return plan

    def images_of(self, server_id):
        return self.cloud.glance.snapshot_images(server_id)

    def wait_for(self, predicate, timeout=30.0, what='condition'):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        self.fail('timed out after %ss waiting for %s' % (timeout, what))


class SnapphaseTestCase(NovaTestCase):
    """Tests of osc-snapphase commands; skip while a command is missing."""

    def require(self, *words, option=None):
        if not command_available(*words):
            self.skipTest('openstack %s is not available yet'
                          % ' '.join(words))
        if option and not option_available(option, *words):
            self.skipTest('openstack %s has no %s yet'
                          % (' '.join(words), option))
