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

"""An image deleted while its snapshot runs, in every driver order.

As nova 34, the operation notices only when the driver next calls Glance
about the image (libvirt reads it as image_snapshot starts; every driver
writes it when the upload starts and when it ends): then ImageNotFound
is swallowed, the task state cleared, no fault recorded. The operations
run in-process on a Cloud whose timers run in order, without a clock.
"""

from osc_snapphase.simulator import drivers
from osc_snapphase.tests.unit.simulator import base


class ImageDeletedCase(base.OperationCase):

    def delete_while_held(self, driver, step, backup=False):
        """Delete the image while step is held; run to the end."""
        server = self.server(driver)
        self.cloud.hold(step, server['id'])
        image, action = self.snapshot(server, backup)
        self.run_timers()
        self.assertEqual([step], [w['step'] for w in self.cloud.held])
        self.cloud.delete_image(image['id'])
        self.cloud.release()
        self.run_timers()
        self.assert_swallowed(server, image, action)
        return self.task_states(server)

    def assert_swallowed(self, server, image, action):
        name = server['name']
        self.assertNotIn(server['id'], self.cloud.ops, name)
        self.assertIsNone(server['task_state'], name)
        self.assertEqual('active', server['vm_state'], name)
        self.assertNotIn(image['id'], self.cloud.images, name)
        self.assertEqual({}, {k: v for k, v in self.cloud.instance_faults
                              .items() if k == server['id'] and v}, name)
        self.assertEqual(['Success'], [e['result'] for e in
                                       action['events']], name)
        self.assertIsNone(action['message'], name)

    @staticmethod
    def states_of(driver, backup=False):
        """A successful operation's task states, then none."""
        return [s.task_state for s in drivers.order(driver, backup)
                if s.task_state] + [None]


class TestImageDeleted(ImageDeletedCase):

    def test_deleted_in_snapshot_carries_on_to_the_upload(self):
        # The scenario pinned against real Nova (operations.py
        # test_image_deleted_during_snapshot): image_pending_upload and
        # image_uploading still come, then none.
        for driver in drivers.NAMES:
            states = self.delete_while_held(driver, 'snapshot')
            self.assertEqual(self.states_of(driver), states, driver)
            self.assertIn('image_uploading', states, driver)

    def test_deleted_in_backup_carries_on_to_the_upload(self):
        for driver in drivers.NAMES:
            states = self.delete_while_held(driver, 'backup', backup=True)
            self.assertEqual(self.states_of(driver, backup=True), states,
                             driver)

    def test_deleted_while_pending_libvirt_reads_it_first(self):
        # libvirt's snapshot() reads the image before anything else; the
        # other drivers first call Glance for the upload.
        for driver in drivers.NAMES:
            states = self.delete_while_held(driver, 'pending')
            if driver.startswith('libvirt'):
                expected = ['image_snapshot_pending', 'image_snapshot', None]
            else:
                expected = self.states_of(driver)
            self.assertEqual(expected, states, driver)

    def test_deleted_in_pending_upload_ends_at_the_upload(self):
        for driver in ('xenserver', 'vmware'):
            states = self.delete_while_held(driver, 'pending_upload')
            self.assertEqual(self.states_of(driver), states, driver)

    def test_fault_image_deleted_in_snapshot_carries_on(self):
        for driver in drivers.NAMES:
            server = self.server(driver)
            self.add_fault(server, 'snapshot', 'image_deleted')
            image, action = self.snapshot(server)
            self.run_timers()
            self.assert_swallowed(server, image, action)
            self.assertEqual(self.states_of(driver),
                             self.task_states(server), driver)

    def test_image_kept_ends_active(self):
        # The control case: the same run without the delete succeeds.
        server = self.server('libvirt-file')
        image, _action = self.snapshot(server)
        self.run_timers()
        self.assertEqual('active', self.cloud.images[image['id']]['status'])
        self.assertEqual(self.states_of('libvirt-file'),
                         self.task_states(server))
