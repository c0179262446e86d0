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

"""The simulator's Nova driver orders, seen through the real CLI.

Each test runs ``openstack server image create`` against a server of
one driver, then reads the simulator's own records: the task-state log
(/_sim/log, the ms bounce included) and the disk copies (/_sim/captures).
"""


from osc_snapphase.tests import fixture
from osc_snapphase.tests.functional import base

PENDING = 'image_snapshot_pending'
SNAPSHOT = 'image_snapshot'
PENDING_UPLOAD = 'image_pending_upload'
UPLOADING = 'image_uploading'
LIBVIRT = [PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING, PENDING_UPLOAD,
           UPLOADING, None]
SHORT = [PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING, None]
WAIT = 60


class TestDriverOrders(base.TestCase):

    durations = {'pending': 0.05, 'snapshot': 0.1, 'pending_upload': 0.1,
                 'copy': 0.2, 'bounce': 5, 'uploading': 0.2,
                 'rbd_snapshot': 0.05, 'flatten': 0.2}

    def image_create_of(self, driver):
        """Image-create a server of driver; return (log, statuses, copy)."""
        server = self.create_server('vm-' + driver, driver=driver)
        # Held in image_snapshot_pending until the CLI has printed the
        # image, queued.
        self.hold('pending', server['id'])
        image = self.image_create(server['name'])
        self.assertEqual('queued', image['status'])
        self.assertEqual(1, self.control.release('pending', server['id']))
        self.control.wait_for(lambda state: not any(
            op['server_id'] == server['id'] for op in state['operations']),
            timeout=WAIT)
        states = [e['new'] for e in self.task_log(server['id'])]
        statuses = [e['new'] for e in self.control.log(
            resource_id=image['id'])]
        copy, = self.control.captures(server['id'])
        self.assertEqual((driver, image['id']),
                         (copy['driver'], copy['image_id']))
        self.assertLessEqual(copy['started'], copy['point_in_time'])
        self.assertLessEqual(copy['point_in_time'], copy['ended'])
        return states[states.index(PENDING):], statuses, copy

    def status_at(self, image_id, status):
        return next(e['time'] for e in self.control.log(resource_id=image_id)
                    if e['new'] == status)

    def test_xenserver_copy_in_image_snapshot(self):
        states, statuses, copy = self.image_create_of('xenserver')
        self.assertEqual(SHORT, states)
        self.assertEqual(['queued', 'saving', 'active'], statuses)
        self.assertEqual(SNAPSHOT, copy['task_state'])

    def test_libvirt_file_copy_after_the_bounce(self):
        states, statuses, copy = self.image_create_of('libvirt-file')
        self.assertEqual(LIBVIRT, states)
        self.assertEqual(['queued', 'saving', 'active'], statuses)
        self.assertEqual(PENDING_UPLOAD, copy['task_state'])
        log = self.task_log(copy['server_id'])
        bounce = [e['time'] for e in log
                  if (e['old'], e['new']) == (UPLOADING, PENDING_UPLOAD)]
        self.assertLessEqual(bounce[0], copy['started'])
        self.assertLessEqual(copy['ended'],
                             self.status_at(copy['image_id'], 'saving'))

    def test_libvirt_lvm_fixed_in_image_snapshot(self):
        states, statuses, copy = self.image_create_of('libvirt-lvm')
        self.assertEqual(LIBVIRT, states)
        self.assertEqual(SNAPSHOT, copy['task_state'])

    def test_libvirt_rbd_never_saving(self):
        states, statuses, copy = self.image_create_of('libvirt-rbd')
        self.assertEqual(SHORT, states)
        self.assertEqual(['queued', 'active'], statuses)
        self.assertEqual(UPLOADING, copy['task_state'])
        image = self.openstack('image', 'show', copy['image_id'],
                               '-f', 'json').json()
        self.assertEqual('raw', image['disk_format'])
        self.assertIn('rbd://', str(image['properties']))

    def test_libvirt_rbd_fallback_suspends_for_the_copy(self):
        states, statuses, copy = self.image_create_of('libvirt-rbd-fallback')
        self.assertEqual(LIBVIRT, states)
        self.assertEqual(['queued', 'saving', 'active'], statuses)
        self.assertEqual(copy['started'], copy['point_in_time'])
        self.assertEqual(PENDING_UPLOAD, copy['task_state'])

    def test_vmware_copy_in_image_pending_upload(self):
        states, statuses, copy = self.image_create_of('vmware')
        self.assertEqual(SHORT, states)
        self.assertEqual(PENDING_UPLOAD, copy['task_state'])


class TestHeldCopy(base.TestCase):
    """Hold a libvirt-file copy and look at it with the CLI."""

    durations = dict(TestDriverOrders.durations, uploading=0.3)

    def test_held_copy(self):
        server = self.create_server('vm1', driver='libvirt-file')
        self.hold('copy', 'vm1')
        image = self.image_create('vm1')
        self.control.wait_held('copy', 'vm1', timeout=WAIT)
        shown = self.openstack('server', 'show', 'vm1', '-c',
                               'OS-EXT-STS:task_state', '-f', 'value')
        self.assertEqual(PENDING_UPLOAD, shown.stdout.strip())
        status = self.openstack('image', 'show', image['id'], '-c',
                                'status', '-f', 'value')
        self.assertEqual('queued', status.stdout.strip())
        copy, = self.control.captures(server['id'])
        self.assertIsNone(copy['ended'])
        self.assertEqual(1, self.control.release('copy', 'vm1'))
        self.control.wait_for(lambda state: not state['operations'],
                              timeout=WAIT)
        copy, = self.control.captures(server['id'])
        self.assertIsNotNone(copy['ended'])


class TestCommandDefault(base.TestCase):
    """python -m osc_snapphase.simulator follows libvirt-file."""

    def setUp(self):
        super(base.TestCase, self).setUp()
        self.sim = self.useFixture(fixture.SimulatorFixture(
            driver=None))
        self.control = self.sim.control

    def test_default_driver(self):
        self.assertEqual('libvirt-file',
                         self.control.state()['config']['driver'])
        server = self.create_server('vm1')
        self.assertEqual('libvirt-file', server['driver'])
