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

"""Tests of the Nova virt driver orders of an image-create."""

from osc_snapphase.simulator import __main__ as main
from osc_snapphase.simulator import client
from osc_snapphase.simulator import drivers
from osc_snapphase.tests.functional.simulator import base

PENDING = 'image_snapshot_pending'
SNAPSHOT = 'image_snapshot'
PENDING_UPLOAD = 'image_pending_upload'
UPLOADING = 'image_uploading'
FILE_ORDER = [None, PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING,
              PENDING_UPLOAD, UPLOADING, None]
# driver: (task states, image statuses, task state at the point in time)
EXPECTED = {
    'xenserver': ([None, PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING, None],
                  ['queued', 'saving', 'active'], SNAPSHOT),
    'libvirt-file': (FILE_ORDER, ['queued', 'saving', 'active'],
                     PENDING_UPLOAD),
    'libvirt-lvm': (FILE_ORDER, ['queued', 'saving', 'active'], SNAPSHOT),
    'libvirt-rbd': ([None, PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING,
                     None], ['queued', 'active'], UPLOADING),
    'libvirt-rbd-fallback': (FILE_ORDER, ['queued', 'saving', 'active'],
                             PENDING_UPLOAD),
    'vmware': ([None, PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING, None],
               ['queued', 'saving', 'active'], PENDING_UPLOAD),
}


class TestOrders(base.SimulatorTestCase):

    def run_image_create(self, driver):
        sid = self.control.create_server('vm-' + driver, driver=driver)['id']
        image_id = self.create_image(sid).body['image_id']
        self.wait_idle(sid)
        return sid, image_id

    def log_times(self, rid, value):
        return [e['time'] for e in self.control.log(resource_id=rid)
                if e['new'] == value]

    def test_every_driver_is_tested(self):
        self.assertEqual(set(drivers.NAMES), set(EXPECTED))

    def test_orders(self):
        for driver, (states, statuses, fixed_in) in EXPECTED.items():
            sid, image_id = self.run_image_create(driver)
            self.assertEqual(states, self.task_states(sid), driver)
            self.assertEqual(statuses, self.image_statuses(image_id), driver)
            captures = self.control.captures(sid)
            self.assertEqual(1, len(captures), driver)
            capture = captures[0]
            self.assertEqual((sid, image_id, driver, fixed_in),
                             (capture['server_id'], capture['image_id'],
                              capture['driver'], capture['task_state']))
            self.assertLessEqual(capture['started'],
                                 capture['point_in_time'])
            self.assertLessEqual(capture['point_in_time'], capture['ended'])
            # The copy ends before the image leaves queued.
            self.assertLessEqual(capture['ended'], self.log_times(
                image_id, statuses[1])[0], driver)

    def test_rbd_image_has_location_never_saving(self):
        sid, image_id = self.run_image_create('libvirt-rbd')
        image = self.call('GET', '/image/v2/images/' + image_id).body
        self.assertEqual('active', image['status'])
        self.assertEqual('raw', image['disk_format'])
        self.assertTrue(image['direct_url'].startswith('rbd://'))
        self.assertEqual(image['direct_url'], image['locations'][0]['url'])
        # The rbd snapshot is taken after image_uploading was written.
        capture = self.control.captures(sid)[0]
        self.assertGreaterEqual(capture['point_in_time'],
                                self.log_times(sid, UPLOADING)[0])

    def test_lvm_fixed_by_managed_save_in_image_snapshot(self):
        sid, image_id = self.run_image_create('libvirt-lvm')
        capture = self.control.captures(sid)[0]
        self.assertEqual(capture['started'], capture['point_in_time'])
        self.assertLessEqual(capture['point_in_time'],
                             self.log_times(sid, PENDING_UPLOAD)[0])
        # Suspended until just before the final image_uploading.
        self.assertLessEqual(capture['ended'],
                             self.log_times(sid, UPLOADING)[-1])
        self.assertGreaterEqual(capture['ended'],
                                self.log_times(sid, PENDING_UPLOAD)[-1])

    def test_libvirt_file_copy_held(self):
        sid = self.control.create_server('vm1', driver='libvirt-file')['id']
        self.control.hold('copy', sid)
        image_id = self.create_image(sid).body['image_id']
        self.control.wait_held('copy', 'vm1')
        # The bounce is over, the copy runs in the second pending_upload
        # with a queued image.
        self.assertEqual(FILE_ORDER[:-2], self.task_states(sid))
        self.assertEqual('queued', self.control.image(image_id)['status'])
        capture, = self.control.captures(sid)
        self.assertIsNone(capture['ended'])
        self.assertIsNone(capture['point_in_time'])
        self.control.release('copy', sid)
        self.wait_idle(sid)
        capture, = self.control.captures(sid)
        self.assertLessEqual(capture['ended'],
                             self.log_times(image_id, 'saving')[0])

    def test_hold_the_bounce_then_the_final_upload(self):
        sid = self.control.create_server('vm1', driver='libvirt-file')['id']
        self.control.hold('bounce', sid)
        self.control.hold('uploading', sid)
        image_id = self.create_image(sid).body['image_id']
        # The bounce: the first image_uploading, image queued, no copy.
        self.control.wait_held('bounce', sid)
        self.assertEqual(FILE_ORDER[:5], self.task_states(sid))
        self.assertEqual('queued', self.control.image(image_id)['status'])
        self.assertEqual([], self.control.captures(sid))
        self.control.release('bounce', sid)
        # 'uploading' is the upload: image saving, the copy over.
        self.control.wait_held('uploading', sid)
        self.assertEqual(FILE_ORDER[:-1], self.task_states(sid))
        self.assertEqual('saving', self.control.image(image_id)['status'])
        self.assertIsNotNone(self.control.captures(sid)[0]['ended'])
        self.control.release()
        self.wait_idle(sid)
        self.assertEqual(FILE_ORDER, self.task_states(sid))

    def test_rbd_copy_held_after_snapshot(self):
        sid = self.control.create_server('vm1', driver='libvirt-rbd')['id']
        self.control.hold('copy', sid)
        image_id = self.create_image(sid).body['image_id']
        self.control.wait_held('copy', sid)
        self.assertEqual(UPLOADING, self.server_field(
            sid, 'OS-EXT-STS:task_state'))
        self.assertEqual('queued', self.control.image(image_id)['status'])
        capture, = self.control.captures(sid)
        self.assertIsNotNone(capture['point_in_time'])
        self.assertIsNone(capture['ended'])
        self.control.release()
        self.wait_idle(sid)

    def test_xenserver_copy_is_image_snapshot(self):
        sid = self.control.create_server('vm1', driver='xenserver')['id']
        self.control.hold('copy', sid)
        self.create_image(sid)
        self.control.wait_held('copy', sid)
        self.assertEqual(SNAPSHOT, self.server_field(
            sid, 'OS-EXT-STS:task_state'))
        self.control.release()
        self.wait_idle(sid)
        self.assertIsNotNone(self.control.captures(sid)[0]['ended'])

    def test_backup_orders(self):
        path = '/compute/v2.1/servers/%s/action'
        body = {'createBackup': {'name': 'b', 'backup_type': 'daily',
                                 'rotation': 2}}
        mv = {'OpenStack-API-Version': 'compute 2.45'}
        for driver, states, fixed_in in (
                ('libvirt-file', [None, 'image_backup', PENDING_UPLOAD,
                                  UPLOADING, PENDING_UPLOAD, UPLOADING,
                                  None], PENDING_UPLOAD),
                ('libvirt-lvm', None, 'image_backup'),
                ('xenserver', [None, 'image_backup', PENDING_UPLOAD,
                               UPLOADING, None], 'image_backup')):
            sid = self.control.create_server('b-' + driver,
                                             driver=driver)['id']
            reply = self.call('POST', path % sid, body, headers=mv)
            self.assertEqual(202, reply.status)
            self.wait_idle(sid)
            if states:
                self.assertEqual(states, self.task_states(sid))
            self.assertEqual(fixed_in,
                             self.control.captures(sid)[0]['task_state'])
            self.assertEqual('active', self.control.image(
                reply.body['image_id'])['status'])

    def test_configured_default_driver(self):
        self.control.configure(driver='vmware')
        sid = self.control.create_server('vm1')['id']
        self.assertEqual('vmware', self.control.server(sid)['driver'])
        self.create_image(sid)
        self.wait_idle(sid)
        self.assertEqual('vmware', self.control.captures(sid)[0]['driver'])
        error = self.assertRaises(client.ControlError,
                                  self.control.configure, driver='hyperv')
        self.assertEqual(400, error.status)

    def test_faults_in_every_order(self):
        # kind, step -> image status, task state left ('busy': not None)
        cases = (('driver_error', 'copy', None, None),
                 ('vm_error', 'copy', None, None),
                 ('stuck', 'copy', None, 'busy'),
                 ('server_deleted', 'copy', None, None),
                 ('stuck_saving', 'uploading', 'saving', UPLOADING),
                 ('image_deleted', 'pending_upload', None, None))
        for driver in drivers.NAMES:
            for kind, phase, image_status, task_state in cases:
                name = '%s-%s' % (driver, kind)
                sid = self.control.create_server(name, driver=driver)['id']
                self.control.add_fault(phase, kind, server=sid)
                image_id = self.create_image(sid).body['image_id']
                self.wait_idle(sid)
                image = self.control.image(image_id)
                self.assertEqual(image_status, image and image['status'],
                                 name)
                server = self.control.server(sid)
                left = server['OS-EXT-STS:task_state']
                self.assertEqual(task_state, 'busy' if left and (
                    task_state == 'busy') else left, name)
                faults = {'driver_error': 1, 'vm_error': 1}.get(kind, 0)
                self.assertEqual(faults, len(server['instance_faults']),
                                 name)
                if kind == 'vm_error':
                    self.assertEqual('error', server['OS-EXT-STS:vm_state'])
                if kind == 'server_deleted':
                    self.assertEqual('deleted',
                                     server['OS-EXT-STS:vm_state'])
                if phase == 'copy':
                    capture, = self.control.captures(sid)
                    self.assertIsNotNone(capture['ended'], name)

    def test_server_deleted_while_held(self):
        sid = self.control.create_server('vm1', driver='libvirt-file')['id']
        self.control.hold('copy', sid)
        image_id = self.create_image(sid).body['image_id']
        self.control.wait_held('copy', sid)
        self.control.delete_server(sid)
        self.control.release()
        self.wait_idle(sid)
        self.assertIsNone(self.control.image(image_id))
        self.assertIsNotNone(self.control.captures(sid)[0]['ended'])

    def test_command_line_driver(self):
        parser = main.build_parser()
        self.assertEqual('libvirt-file', parser.parse_args([]).driver)
        self.assertEqual('vmware',
                         parser.parse_args(['--driver', 'vmware']).driver)
        self.assertRaises(SystemExit, parser.parse_args,
                          ['--driver', 'hyperv'])
        rule = main.parse_fault('driver_error@copy')
        self.assertEqual('copy', rule['phase'])
