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

"""Volume-backed servers against the real Nova and its Cinder test double.

The server boots from a volume of nova's Cinder fixture through Nova's real
API (``block_device_mapping_v2``); createImage runs in the real Nova API
(``snapshot_volume_backed``) and its compute service (which keeps the guest
frozen until every snapshot has left ``creating``).  The Cinder snapshots'
states are held and released by the test (:mod:`.cinder`); the product reads
them through the Cinder v3 HTTP view, which counts and times its reads.
A waiting CLI must answer after the release of the last snapshot, on the
first poll that shows it: after the release at most one read of each
snapshot and one listing per volume arrive (a read in flight at the
release is not counted), so it polled no more.  How fast it answers is
the benchmark's figure, kept here as a test detail.
"""

import collections
import json
import threading
import time

import fixtures
import requests
from testtools import content

from osc_snapphase.tests.functional_nova import base

DATA_VOLUME = '0b8c7c2a-4f1e-4b0c-9d2e-5a6b7c8d9e01'
IMAGE_CREATE = ('server', 'image', 'create')
WATCH = ('server', 'task-state', 'watch')


class VolumeBackedTestCase(base.SnapphaseTestCase):

    def setUp(self):
        super().setUp()
        self.cinder = self.cloud.cinder
        self.cinder_api = self.cloud.cinder_api

    def boot_bfv(self, name='bfv1', data_volume=False):
        volumes = (base.BOOT_VOLUME,)
        if data_volume:
            volumes += (self.cinder.add_volume(DATA_VOLUME, 'data1'),)
        return self.boot_from_volume(name, volumes)

    def image(self, image_id):
        """The image as the Glance v2 API shows it (None when gone)."""
        resp = requests.get(
            self.cloud.glance_url + '/v2/images/%s' % image_id, timeout=30,
            headers={'X-Auth-Token': self.cloud.admin_token})
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def image_with_snapshot(self, snapshot_id):
        """The id of the image whose block_device_mapping names it.

        Nova creates the image right after the snapshots: wait for it.
        """
        def find():
            for image in self.cloud.glance.detail(None):
                mapping = image.get('properties', {}).get(
                    'block_device_mapping')
                if mapping and snapshot_id in json.dumps(mapping):
                    return image['id']
        return self.wait_for(find, what='the image of snapshot %s'
                             % snapshot_id)

    def snapshot(self, snapshot_id):
        """The snapshot as the Cinder v3 API shows it (None on 404)."""
        project = self.cloud.keystone.projects['admin']
        resp = requests.get(
            '%s/v3/%s/snapshots/%s' % (self.cloud.cinder_url, project,
                                       snapshot_id), timeout=30,
            headers={'X-Auth-Token': self.cloud.admin_token})
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()['snapshot']

    def assert_answered_on(self, result, released_at, what, volumes=1):
        """The CLI answered after ``released_at``, on the poll that saw it.

        Its Cinder snapshot reads that arrived after the release (the
        HTTP log's arrival times; the release settles the snapshots before
        it takes its time, so each of them saw it; one in flight then is
        not counted) are at most one poll's: one GET per snapshot and one
        listing per volume (``volumes``).  The latencies are details only:
        the figure is the benchmark's (osc_snapphase/tests/bench, delay
        section), and load stretches it.
        """
        latency = result.output_at - released_at
        since = self.in_flight_until(released_at)
        self.addDetail('latency-%s' % what.replace(' ', '-'),
                       content.text_content(
                           '%.3f s after the release, %.3f s after the '
                           'answer in flight then' % (
                               latency, result.output_at - since)))
        polls = sorted(
            (start - released_at, end - released_at, service.name, method,
             path)
            for service in (self.cloud.nova_http, self.cloud.glance_http,
                            self.cloud.cinder_http)
            for start, end, method, path, agent in list(service.spans)
            if end > released_at - 1.0 and start < result.output_at and
            not agent.startswith('python-requests'))
        self.addDetail('requests-%s' % what.replace(' ', '-'),
                       content.text_content('\n'.join(
                           '%+.3f %+.3f %s %s %s' % p for p in polls)))
        self.assertGreaterEqual(latency, 0, result)
        reads = collections.Counter(
            path for t, method, path, agent in list(
                self.cloud.cinder_http.requests)
            if t >= released_at and method == 'GET' and
            '/snapshots' in path and
            not agent.startswith('python-requests'))
        for path, count in reads.items():
            most = volumes if path.endswith('/snapshots/detail') else 1
            self.assertLessEqual(
                count, most, '%s: %d reads of %s after the release (at '
                'most %d: it did not answer on the first poll that showed '
                'it): %r' % (what, count, path, most, result))

    def create_held(self, server='bfv1', name='snap1', outcome='available'):
        """Plain createImage through the CLI with the snapshot held.

        Returns (plan, image id, snapshot id).
        """
        plan = self.volume_plan(hold=True, outcome=outcome)
        image_id = self.openstack_json(*IMAGE_CREATE, server, '--name',
                                       name)['id']
        snapshot_id = plan.wait_created(1)[0]
        return plan, image_id, snapshot_id


class TestRealNovaVolumeBacked(VolumeBackedTestCase):
    """What real Nova 34 does; no osc-snapphase option is involved."""

    def test_image_active_at_once_no_task_state_guest_frozen(self):
        server_id = self.boot_bfv(data_volume=True)
        self.assertEqual('', self.cloud.server(server_id)['image'])
        calls = []
        lock = threading.Lock()

        def recorder(name):
            def record(driver_self, context, instance, image_meta):
                with lock:
                    calls.append((name, time.monotonic()))
            return record
        for name in ('quiesce', 'unquiesce'):
            self.useFixture(fixtures.MonkeyPatch(
                'nova.virt.fake.FakeDriver.' + name, recorder(name)))
        root = self.volume_plan(base.BOOT_VOLUME, hold=True)
        data = self.volume_plan(DATA_VOLUME, hold=True)

        image_id = self.openstack_json(*IMAGE_CREATE, 'bfv1', '--name',
                                       'snap1')['id']
        root_snap, = root.wait_created(1)
        data_snap, = data.wait_created(1)
        # The image is active at once, while both snapshots are creating.
        image = self.image(image_id)
        self.assertEqual('creating', self.snapshot(root_snap)['status'])
        self.assertEqual('creating', self.snapshot(data_snap)['status'])
        self.assertEqual('active', image['status'])
        self.assertEqual(0, image['size'])
        self.assertEqual('True', image['bdm_v2'])
        self.assertIn('root_device_name', image)
        self.assertNotIn('instance_uuid', image)
        self.assertNotIn('image_type', image)
        mapping = json.loads(image['block_device_mapping'])
        self.assertEqual({root_snap, data_snap},
                         {m['snapshot_id'] for m in mapping})
        self.assertEqual({'snapshot'}, {m['source_type'] for m in mapping})
        self.assertEqual(
            [base.BOOT_VOLUME],
            [self.snapshot(m['snapshot_id'])['volume_id'] for m in mapping
             if m['boot_index'] == 0])
        # GET /v2/images?instance_uuid= does not find it.
        self.assertEqual([], self.images_of(server_id))
        # No task state, so a second createImage is not refused.
        self.assertIsNone(self.cloud.task_state(server_id))
        second = self.openstack_json(*IMAGE_CREATE, 'bfv1', '--name',
                                     'snap2')['id']
        self.assertNotEqual(image_id, second)
        root.wait_created(2)
        data.wait_created(2)
        self.assertIsNone(self.cloud.task_state(server_id))
        # The compute service keeps the guest frozen while a snapshot of
        # it is creating: it polls Cinder (one volume after the other)
        # and thaws only after the last has left creating.
        self.wait_for(lambda: len(self.cinder.nova_reads_of(
            root.snapshot_ids[0]) + self.cinder.nova_reads_of(
            data.snapshot_ids[0])) >= 2, what='nova polling Cinder')
        self.assertEqual(['quiesce', 'quiesce'], [c[0] for c in calls])
        root.release()
        self.wait_for(lambda: len(self.cinder.nova_reads_of(
            data.snapshot_ids[0], since=root.released_at)) >= 2,
            what='nova polling the data volume snapshot')
        self.assertEqual(['quiesce', 'quiesce'], [c[0] for c in calls])
        data.release()
        self.wait_for(lambda: len(calls) == 4, what='two thaws')
        self.assertEqual(['quiesce', 'quiesce', 'unquiesce', 'unquiesce'],
                         [c[0] for c in calls])
        self.assertGreaterEqual(calls[2][1], data.released_at)
        for snapshot_id in root.snapshot_ids + data.snapshot_ids:
            self.assertEqual('available',
                             self.snapshot(snapshot_id)['status'])
        self.assertEqual('active', self.image(second)['status'])
        self.assertIsNone(self.cloud.task_state(server_id))

    def test_backup_create_refused_with_400(self):
        server_id = self.boot_bfv()
        result = self.openstack('server', 'backup', 'create', 'bfv1',
                                '--name', 'bk1', '--type', 'daily',
                                '--rotate', '1', expect=1)
        self.assertIn('400', result.stderr)
        self.assertIn('Backup is not supported for volume-backed instances',
                      result.stderr)
        self.assertEqual('', result.stdout.strip())
        if base.option_available('--wait-phase', 'server', 'backup',
                                 'create'):
            result = self.openstack(
                'server', 'backup', 'create', 'bfv1', '--name', 'bk2',
                '--type', 'daily', '--rotate', '1', '--wait-phase',
                'snapshot', '-f', 'json', expect=1)
            # The product may refuse it before asking Nova; either way the
            # message says why.
            self.assertIn('volume-backed', result.stderr)
            self.assertEqual('', result.stdout.strip())
        self.assertIsNone(self.cloud.task_state(server_id))
        self.assertEqual([], self.cinder.list_snapshots())
        self.assertEqual([], [i for i in self.cloud.glance.detail(None)
                              if i['name'] in ('bk1', 'bk2')])


class TestWaitPhaseVolumeBacked(VolumeBackedTestCase):
    """``server image create --wait-phase snapshot`` follows Cinder."""

    def setUp(self):
        super().setUp()
        self.require(*IMAGE_CREATE, option='--wait-phase')

    def start_create(self, name='snap1'):
        return self.openstack_start(*IMAGE_CREATE, 'bfv1', '--name', name,
                                    '--wait-phase', 'snapshot',
                                    '--wait-phase-timeout', '120',
                                    '-f', 'json')

    def test_returns_after_every_snapshot_left_creating(self):
        server_id = self.boot_bfv(data_volume=True)
        root = self.volume_plan(base.BOOT_VOLUME, hold=True)
        data = self.volume_plan(DATA_VOLUME, hold=True)
        proc = self.start_create()
        root_snap, = root.wait_created(1)
        data_snap, = data.wait_created(1)
        image_id = self.image_with_snapshot(root_snap)

        # Both held: the CLI reads them and waits.
        self.wait_snapshot_reads(root_snap, reads=2)
        self.wait_snapshot_reads(data_snap, reads=2)
        self.assertIsNone(proc.poll())
        self.assertIsNone(self.cloud.task_state(server_id))
        self.assertEqual('active', self.image(image_id)['status'])

        # One available, one still creating: it still waits.
        root.release()
        self.wait_snapshot_reads(data_snap, reads=2, since=root.released_at)
        self.assertIsNone(proc.poll())
        self.assertEqual('creating', self.cinder.snapshot_status(data_snap))

        data.release()
        result = self.finish_timed(proc)
        self.assert_answered_on(result, data.released_at, 'last snapshot',
                                volumes=2)
        # It returned because it saw the snapshot available.
        self.assertEqual('available', self.cinder_api.last_read(
            data_snap)[1])
        out = result.json()
        self.assertEqual(image_id, out['id'])
        self.assertEqual('active', out['status'])
        self.assertEqual('complete', out['capture'])
        self.assertIsNone(self.cloud.task_state(server_id))

    def test_pending_upload_and_upload_also_wait_for_cinder(self):
        # The image is active at once: only the snapshots can hold these.
        self.boot_bfv()
        for phase in ('pending-upload', 'upload'):
            plan = self.volume_plan(base.BOOT_VOLUME, hold=True)
            proc = self.openstack_start(
                *IMAGE_CREATE, 'bfv1', '--name', 'snap-%s' % phase,
                '--wait-phase', phase, '--wait-phase-timeout', '120',
                '-f', 'json')
            snapshot_id, = plan.wait_created(1)
            image_id = self.image_with_snapshot(snapshot_id)
            self.wait_snapshot_reads(snapshot_id, reads=2)
            self.assertIsNone(proc.poll(), phase)
            self.assertEqual('active', self.image(image_id)['status'])
            plan.release()
            result = self.finish_timed(proc)
            self.assert_answered_on(result, plan.released_at, phase)
            out = result.json()
            self.assertEqual(image_id, out['id'])
            self.assertEqual('active', out['status'])
            self.assertEqual('complete', out['capture'])

    def test_snapshot_error_exits_3_naming_snapshot_volume_image(self):
        self.boot_bfv()
        plan = self.volume_plan(base.BOOT_VOLUME, hold=True)
        proc = self.start_create()
        snapshot_id, = plan.wait_created(1)
        image_id = self.image_with_snapshot(snapshot_id)
        self.wait_snapshot_reads(snapshot_id, reads=2)
        self.assertIsNone(proc.poll())
        plan.release('error')
        result = self.finish_timed(proc, expect=3)
        for name in (snapshot_id, base.BOOT_VOLUME, image_id):
            self.assertIn(name, result.stderr)
        self.assertIn('error', result.stderr)
        # The image stays active in Glance; only Cinder tells the failure.
        self.assertEqual('active', self.image(image_id)['status'])

    def test_snapshot_deleted_exits_3(self):
        self.boot_bfv()
        plan = self.volume_plan(base.BOOT_VOLUME, hold=True)
        proc = self.start_create()
        snapshot_id, = plan.wait_created(1)
        self.wait_snapshot_reads(snapshot_id, reads=2)
        self.assertIsNone(proc.poll())
        plan.release('deleted')
        result = self.finish_timed(proc, expect=3)
        self.assertIsNone(self.snapshot(snapshot_id))
        self.assertIn(snapshot_id, result.stderr)
        self.assertIn(self.image_with_snapshot(snapshot_id), result.stderr)


class TestWatchImageVolumeBacked(VolumeBackedTestCase):
    """``server task-state watch --image`` after the image-create ended."""

    def setUp(self):
        super().setUp()
        self.require(*WATCH, option='--image')

    def test_watch_image_after_success_exits_0(self):
        server_id = self.boot_bfv()
        plan, image_id, snapshot_id = self.create_held()
        plan.release()
        self.assertEqual('available', self.cinder.snapshot_status(
            snapshot_id))
        result = self.openstack(*WATCH, '--image', image_id,
                                '--timeout', '120', '-f', 'json')
        rows = result.json()
        self.assertTrue(rows, result)
        self.assertEqual(server_id, rows[-1]['Server ID'])
        self.assertIsNone(rows[-1]['Task State'])
        self.assertEqual('complete', rows[-1]['Capture'])
        self.assertIn(image_id, rows[-1]['Capture Evidence'])
        self.assertEqual('available', self.cinder_api.last_read(
            snapshot_id)[1])

    def test_watch_image_after_snapshot_error_exits_3(self):
        self.boot_bfv()
        plan, image_id, snapshot_id = self.create_held(outcome='error')
        plan.release()
        self.assertEqual('error', self.cinder.snapshot_status(snapshot_id))
        result = self.openstack(*WATCH, '--image', image_id,
                                '--timeout', '120', '-f', 'json', expect=3)
        self.assertIn(snapshot_id, result.stderr)
        self.assertIn(image_id, result.stderr)
        if result.stdout.strip():
            self.assertEqual('failed', result.json()[-1]['Capture'])

    def test_watch_image_while_creating_ends_when_released(self):
        self.boot_bfv()
        plan, image_id, snapshot_id = self.create_held()
        watch = self.openstack_start(*WATCH, '--image', image_id,
                                     '--timeout', '120', '-f', 'json')
        self.wait_snapshot_reads(snapshot_id, reads=2)
        self.assertIsNone(watch.poll())
        plan.release()
        result = self.finish_timed(watch)
        self.assertEqual('available', self.cinder_api.last_read(
            snapshot_id)[1])
        captures = [row['Capture'] for row in result.json()]
        self.assertEqual('complete', captures[-1])
        self.assertIn('in-progress', captures)


class TestShowAndWatchServerVolumeBacked(VolumeBackedTestCase):
    """``task-state show`` / ``watch <server>`` of a volume-backed server."""

    def test_show_during_and_after_the_snapshot(self):
        self.require('server', 'task-state', 'show')
        server_id = self.boot_bfv()
        plan, image_id, snapshot_id = self.create_held()
        shown = self.openstack_json('server', 'task-state', 'show', 'bfv1')
        self.assertEqual(server_id, shown['id'])
        self.assertIsNone(shown['task_state'])
        self.assertIs(True, shown['volume_backed'])
        # DESIGN.md also names an image_id field; the product (and its
        # docs) judge from the volumes' snapshots and do not give one.
        if 'image_id' in shown:
            self.assertEqual(image_id, shown['image_id'])
        self.assertEqual('in-progress', shown['capture'])
        self.assertIs(False, shown['disk_writes_safe'])
        self.assertIn(snapshot_id, shown['capture_evidence'])
        plan.release()
        shown = self.openstack_json('server', 'task-state', 'show', 'bfv1')
        self.assertIsNone(shown['task_state'])
        self.assertIs(True, shown['volume_backed'])
        self.assertIs(True, shown['disk_writes_safe'])
        self.assertIn(shown['capture'], ('complete', 'none'))

    def test_watch_until_disk_safe_waits_for_the_snapshot(self):
        self.require(*WATCH)
        self.boot_bfv()
        plan, image_id, snapshot_id = self.create_held()
        watch = self.openstack_start(*WATCH, 'bfv1', '--until', 'disk-safe',
                                     '--timeout', '120', '-f', 'json')
        self.wait_snapshot_reads(snapshot_id, reads=2)
        self.assertIsNone(watch.poll())
        plan.release()
        rows = self.finish_timed(watch).json()
        self.assertEqual('available', self.cinder_api.last_read(
            snapshot_id)[1])
        captures = [row['Capture'] for row in rows]
        self.assertEqual('in-progress', captures[0])
        self.assertEqual('complete', captures[-1])
        self.assertEqual({None}, {row['Task State'] for row in rows})


class TestProjectUserVolumeBacked(VolumeBackedTestCase):
    """A project member: ``server create --volume`` and the wait."""

    def test_member_boots_with_the_cli_and_waits_for_its_snapshot(self):
        self.require(*IMAGE_CREATE, option='--wait-phase')
        created = self.openstack_json(
            'server', 'create', '--volume', base.BOOT_VOLUME, '--flavor',
            base.FLAVOR, '--nic', 'none', 'bfvd', cloud_name='nova-demo')
        server_id = created['id']
        self.wait_for(lambda: self.cloud.server(server_id)['status'] ==
                      'ACTIVE', what='bfvd ACTIVE')
        self.assertEqual('', self.cloud.server(server_id)['image'])
        plan = self.volume_plan(hold=True)
        proc = self.openstack_start(
            *IMAGE_CREATE, 'bfvd', '--name', 'snapd', '--wait-phase',
            'snapshot', '--wait-phase-timeout', '120', '-f', 'json',
            cloud_name='nova-demo')
        snapshot_id, = plan.wait_created(1)
        # The snapshot belongs to the member's project (Nova makes it
        # with the user's context), so the member can read it.
        self.assertEqual(self.cloud.keystone.projects['demo'],
                         self.snapshot(snapshot_id)[
                             'os-extended-snapshot-attributes:project_id'])
        self.wait_snapshot_reads(snapshot_id, reads=2)
        self.assertIsNone(proc.poll())
        plan.release()
        result = self.finish_timed(proc)
        self.assert_answered_on(result, plan.released_at,
                                'member snapshot')
        self.assertEqual('complete', result.json()['capture'])
        self.assertEqual(self.image_with_snapshot(snapshot_id),
                         result.json()['id'])
