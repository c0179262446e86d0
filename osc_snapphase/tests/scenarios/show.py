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

"""``openstack server task-state show`` on each step of an image-create.

The default order: the image is queued during image_snapshot and
image_pending_upload (no proof that the disk copy is over, whatever the
task state) and saving from image_uploading on (the copy is over).
"""

SHOW_KEYS = {'id', 'name', 'status', 'vm_state', 'task_state',
             'power_state', 'phase', 'description', 'capture',
             'capture_evidence', 'capture_model', 'disk_writes_safe',
             'image_create_allowed', 'volume_backed'}


class ShowScenarios(object):
    """Mixed into a cloud's base class (scenarios.base.CLITestCase)."""

    def show(self):
        return self.openstack_json('server', 'task-state', 'show', 'vm1')

    def test_show_idle_and_during_each_step(self):
        server_id = self.boot('vm1')
        shown = self.show()
        self.assertEqual(SHOW_KEYS, set(shown))
        self.assertEqual(server_id, shown['id'])
        self.assertEqual('vm1', shown['name'])
        self.assertEqual('ACTIVE', shown['status'])
        self.assertEqual('active', shown['vm_state'])
        self.assertIsNone(shown['task_state'])
        self.assertEqual('idle', shown['phase'])
        self.assertEqual('none', shown['capture'])
        self.assertEqual('image-status', shown['capture_model'])
        self.assertIs(True, shown['disk_writes_safe'])
        self.assertIs(True, shown['image_create_allowed'])
        self.assertIs(False, shown['volume_backed'])

        self.script(server_id, hold=('pending', 'snapshot',
                                     'pending_upload', 'upload'))
        image_id = self.create_image(server_id)
        self.wait_held('pending', server_id)
        shown = self.show()
        self.assertEqual('image_snapshot_pending', shown['task_state'])
        self.assertEqual('not-started', shown['capture'], shown)
        self.assertIs(False, shown['disk_writes_safe'], shown)
        self.release('pending', server_id)
        for step, task_state in (('snapshot', 'image_snapshot'),
                                 ('pending_upload', 'image_pending_upload')):
            self.wait_held(step, server_id)
            shown = self.show()
            self.assertEqual(task_state, shown['task_state'], shown)
            self.assertEqual('in-progress', shown['capture'], shown)
            self.assertIn(image_id, shown['capture_evidence'], shown)
            self.assertIn('queued', shown['capture_evidence'], shown)
            self.assertIs(False, shown['disk_writes_safe'], shown)
            self.assertIs(False, shown['image_create_allowed'], shown)
            self.release(step, server_id)
        # image_uploading with the image saving: the copy is over.
        self.wait_held('upload', server_id)
        shown = self.show()
        self.assertEqual('image_uploading', shown['task_state'], shown)
        self.assertEqual('complete', shown['capture'], shown)
        self.assertIn(image_id, shown['capture_evidence'], shown)
        self.assertIn('saving', shown['capture_evidence'], shown)
        self.assertIs(True, shown['disk_writes_safe'], shown)
        self.assertIs(False, shown['image_create_allowed'], shown)
        self.assertIs(False, shown['volume_backed'], shown)
        self.release()
        self.operation_ended(server_id)
        self.wait_task_state(server_id, None)
        shown = self.show()
        self.assertEqual('idle', shown['phase'], shown)
        self.assertIs(True, shown['image_create_allowed'], shown)
