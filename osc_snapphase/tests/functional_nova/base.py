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

import os
import time

import fixtures
from testtools import content

from osc_snapphase.simulator import faults
from osc_snapphase.tests import cli
from osc_snapphase.tests.functional_nova import cinder
from osc_snapphase.tests.functional_nova import cloud
from osc_snapphase.tests.functional_nova import driver
from osc_snapphase.tests.scenarios import base as scenario_base

IMAGE_ID = cloud.glance_fixture.GlanceFixture.image1['id']
#: The bootable volume nova's Cinder fixture knows.
BOOT_VOLUME = cinder.PhaseCinderFixture.IMAGE_BACKED_VOL
FLAVOR = 'm1.tiny'
WAIT = scenario_base.WAIT
#: The whole-test limit unless OS_TEST_TIMEOUT says otherwise.
TEST_TIMEOUT = 1800
#: The scenarios' steps are the driver's phases.
OUTCOMES = {'ok': str, 'error': driver.InjectedFailure,
            'not_running': driver.exception.InstanceNotRunning,
            'image_gone': driver.exception.ImageNotFound,
            'server_gone': driver.exception.InstanceNotFound}
Result = cli.Result
_COMMAND_CACHE = {}


def _help(*words):
    """``openstack <words> --help`` (once per process)."""
    if words not in _COMMAND_CACHE:
        _COMMAND_CACHE[words] = cli.run(
            list(words) + ['--help'],
            cli.environ(extra={'PYTHONWARNINGS': 'ignore'}))
    return _COMMAND_CACHE[words]


def command_available(*words):
    """True when ``openstack <words> --help`` works (a plugin command)."""
    result = _help(*words)
    return result.returncode == 0 and 'usage: openstack' in result.stdout


def option_available(option, *words):
    return option in _help(*words).stdout


def result_of(clock):
    """The Result of a background CLI read by an output.AnswerClock."""
    return Result(clock.proc.argv, clock.proc.returncode, clock.stdout,
                  clock.stderr, clock.proc.started_wall,
                  clock.ended_at or time.time())


def _caller(environ):
    """Whose request: the CLI's ('compute') or the test's own (None)."""
    agent = environ.get('HTTP_USER_AGENT', '')
    return None if agent.startswith('python-requests') else 'compute'


class NovaTestCase(scenario_base.CLITestCase):
    """Each test gets its own real Nova (about 2 s to start).

    It is the scenarios' cloud interface
    (:mod:`osc_snapphase.tests.scenarios`) for the real Nova: the fake
    driver's plans hold and fail steps, Nova's HTTP log counts the CLI's
    requests.
    """

    #: The image a scenario boots a server from.
    BOOT_IMAGE = IMAGE_ID

    def setUp(self):
        super().setUp()
        self.use_test_timeout()
        self.cloud = self.useFixture(cloud.NovaCloud())
        self.addOnException(self._attach_nova_log)
        self.plans = {}
        self.faults = None
        self.admin_cloud = 'nova-admin'

    def use_test_timeout(self):
        """End the test after OS_TEST_TIMEOUT seconds (default 1800).

        A stuck in-process Nova must not hang the run (the simulator
        suite's cloud is a subprocess, and its waits all end). Generous:
        a scenario runs up to nine CLIs, each start taking minutes on a
        loaded machine; each event wait has its own limit (WAIT).
        """
        self.useFixture(fixtures.Timeout(
            int(os.environ.get('OS_TEST_TIMEOUT', TEST_TIMEOUT)),
            gentle=True))

    def _attach_nova_log(self, exc_info):
        lines = self.cloud.log_output().splitlines()[-400:]
        self.addDetail('nova-log', content.text_content('\n'.join(lines)))

    # -- the openstack CLI --

    def environ(self, cloud=None, env=None):
        return cli.environ(self.cloud.clouds_yaml, cloud or 'nova-admin',
                           dict({'PYTHONWARNINGS': 'ignore'}, **(env or {})))

    def openstack(self, *args, expect=0, cloud_name=None, cloud=None,
                  env=None, timeout=None):
        """Run ``openstack args...``; check the exit status unless None."""
        return super().openstack(*args, cloud=cloud_name or cloud,
                                 expect=expect, env=env, timeout=timeout)

    def openstack_start(self, *args, cloud_name='nova-admin'):
        """Start ``openstack args...`` in the background (a Popen)."""
        return self.start(*args, cloud=cloud_name)

    def finish_timed(self, proc, expect=0, timeout=None,
                     clock=time.monotonic):
        """Like finish(); the Result also gets ``output_at``.

        ``output_at`` is the ``time.monotonic()`` when stdout first held a
        complete JSON document (else when its last byte came; else the
        exit): when the command had answered, without the interpreter's
        exit.
        """
        return super().finish_timed(proc, expect, timeout, clock)

    # -- the cloud, directly (fast, no subprocess) --

    def boot(self, name='vm1', timeout=WAIT):
        """Boot a server through the Nova API and wait for ACTIVE."""
        return self._boot(name, {'imageRef': IMAGE_ID}, timeout)

    def _boot(self, name, fields, timeout):
        resp = self._nova_post('/servers', {'server': dict(
            fields, name=name, flavorRef='1', networks='none')})
        server_id = resp['server']['id']

        def active():
            server = self.cloud.server(server_id)
            self.assertNotEqual('ERROR', server['status'], server)
            return (server['status'] == 'ACTIVE' and
                    server['OS-EXT-STS:task_state'] is None)
        self.wait_for(active, timeout=timeout, what='%s ACTIVE' % name)
        return server_id

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
        return self._boot(name, {'block_device_mapping_v2': bdms}, timeout)

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
        self.plans[server] = plan
        self.addCleanup(plan.release)
        return plan

    def images_of(self, server_id):
        return self.cloud.glance.snapshot_images(server_id)

    # -- the scenarios' cloud interface --

    def script(self, server, hold=(), fail_in=None, failure='error'):
        failures = {'fail_in': None, 'not_running_in': None}
        if fail_in is not None:
            failures[{'error': 'fail_in',
                      'not_running': 'not_running_in'}[failure]] = fail_in
        self.plan(server, hold=hold, **failures)

    def _plans(self, server=None):
        """The plans of a server (as given to plan(); None: all)."""
        if server is None:
            return list(self.plans.values())
        return [self.plans[server]] if server in self.plans else []

    def _plan(self, server=None):
        plans = self._plans(server)
        self.assertEqual(1, len(plans), 'one plan for %s' % server)
        return plans[0]

    def wait_held(self, step, server=None):
        """Wait until ``step`` is entered.

        Fails at once if the driver call has ended.
        """
        plan = self._plan(server)
        self.wait_for(lambda: plan.entered[step].is_set() or
                      plan.done.is_set(), WAIT, 'step %s' % step)
        if not plan.entered[step].is_set():
            self.fail('the snapshot of %s ended (%r) before step %s: %s'
                      % (server, plan.outcome, step, plan.describe()))

    def release(self, step=None, server=None):
        for plan in self._plans(server):
            plan.release(step)

    def operation_ended(self, server_id, outcome='ok'):
        found = self._plan(server_id).wait_done(timeout=WAIT)
        self.assertIsInstance(found, OUTCOMES[outcome])

    def operation_running(self, server_id):
        return not self._plan(server_id).done.is_set()

    def create_image(self, server_id, name='snap1'):
        return self._nova_post('/servers/%s/action' % server_id,
                               {'createImage': {'name': name}})['image_id']

    def task_state(self, server_id):
        return self.cloud.task_state(server_id)

    def server_gone(self, server_id):
        return self.cloud.server(server_id) is None

    def poll_mark(self):
        return time.monotonic()

    def cli_polls(self, server_id, mark):
        return self.cloud.nova_http.count(
            'GET', '/v2.1/servers/%s' % server_id, mark)

    def api_get(self, path):
        resp = self.cloud.nova_get(path)
        resp.raise_for_status()
        return resp.json()

    def http_fault(self, code, count, path=None, retry_after=None):
        """As the simulator does: its fault middleware before Nova's API.

        The test's own requests (python-requests) are never faulted.
        """
        if self.faults is None:
            self.faults = faults.FaultMiddleware(
                self.cloud.nova_http.app, [], endpoint=_caller)
            self.cloud.nova_http.app = self.faults
        rule = {'kind': 'status', 'code': code, 'count': count,
                'endpoint': 'compute', 'path': path,
                'retry_after': retry_after}
        with self.faults.lock:
            self.faults.rules.append(faults.check(rule))

    def http_faulted(self, code):
        if self.faults is None:
            return 0
        with self.faults.lock:
            return sum(rule.get('fired', 0) for rule in self.faults.rules
                       if rule['code'] == code)

    # -- commands --

    def require(self, *words, option=None):
        """Fail (never skip) when a command or its option is missing."""
        if not command_available(*words):
            self.fail('openstack %s did not load (see openstack %s --help)'
                      % ((' '.join(words),) * 2))
        if option and not option_available(option, *words):
            self.fail('openstack %s has no %s' % (' '.join(words), option))


#: Tests of osc-snapphase commands (the name older modules use).
SnapphaseTestCase = NovaTestCase
