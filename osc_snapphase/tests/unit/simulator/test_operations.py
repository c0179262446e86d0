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

"""Image operations that another request or a fault cuts short.

As nova 34: a task state changed under a snapshot (os-resetState, then
perhaps a new snapshot) pre-empts it at its next write; a backup rotates
whenever _snapshot_instance returns, even when its own image or server
is gone; holds and faults at 'uploading' act on the upload, never on
libvirt's bounce.
"""

import types

from osc_snapphase.simulator import actions
from osc_snapphase.simulator import drivers
from osc_snapphase.simulator import glance
from osc_snapphase.tests.unit.simulator import base

PENDING = 'image_snapshot_pending'
SNAPSHOT = 'image_snapshot'
PENDING_UPLOAD = 'image_pending_upload'
UPLOADING = 'image_uploading'


def old_backup(cloud, server, created_at):
    """A daily backup of server, active, made at created_at."""
    return glance.new_image(
        cloud, server['project_id'], 'old', status='active',
        created_at=created_at, properties={
            'instance_uuid': server['id'], 'image_type': 'backup',
            'backup_type': 'daily'})


class TestPreempted(base.OperationCase):
    """os-resetState during a snapshot: UnexpectedTaskStateError."""

    def request(self):
        return types.SimpleNamespace(
            ctx=dict(self.ctx, is_admin=True), microversion=(2, 45))

    def reset(self, server):
        reply = actions.reset_state(self.cloud, self.request(), server,
                                    {'state': 'active'})
        self.assertEqual(202, reply.status)

    def create_image(self, server):
        reply = actions.create_image(self.cloud, self.request(), server,
                                     {'name': 'snap2'})
        self.assertEqual(202, reply.status)
        return self.cloud.images[reply.body['image_id']]

    def held_at(self, step, server):
        self.cloud.hold(step, server['id'])
        image, action = self.snapshot(server)
        self.run_timers()
        self.assertEqual([step], [w['step'] for w in self.cloud.held])
        return image, action

    def assert_preempted(self, server, image, expected, actual, faults=1):
        self.assertNotIn(image['id'], self.cloud.images)
        self.assertEqual('deleted', self.cloud.deleted_images[
            image['id']]['status'])
        recorded = self.cloud.instance_faults[server['id']]
        self.assertEqual(faults, len(recorded))
        self.assertEqual(
            "Conflict updating instance %s. Expected: {'task_state': "
            "['%s']}. Actual: {'task_state': %s}" % (
                server['id'], expected, actual), recorded[-1]['message'])
        self.assertIn('nova.exception.UnexpectedTaskStateError',
                      recorded[-1]['details'])

    def test_reset_then_a_new_snapshot(self):
        server = self.server('xenserver')
        old, _action = self.held_at('snapshot', server)
        self.reset(server)
        # Accepted (task state none); held as Nova's compute has not
        # picked it up yet.
        self.cloud.hold('pending', server['id'])
        new = self.create_image(server)
        self.assertEqual(PENDING, server['task_state'])
        self.cloud.release('snapshot')
        self.run_timers()
        # The old snapshot expected image_snapshot: it ends, and leaves
        # the task state to the new one.
        self.assert_preempted(server, old, SNAPSHOT, "'%s'" % PENDING)
        self.assertEqual(PENDING, server['task_state'])
        self.assertEqual(['pending'], [w['step'] for w in self.cloud.held])
        self.cloud.release()
        self.run_timers()
        self.assertEqual('active', new['status'])
        self.assertIsNone(server['task_state'])
        self.assertEqual([PENDING, SNAPSHOT, None, PENDING, SNAPSHOT,
                          PENDING_UPLOAD, UPLOADING, None],
                         self.task_states(server))
        self.assertEqual({}, self.cloud.ops)

    def test_same_state_goes_on_as_in_nova(self):
        # Nova only compares with the state it expects: the new snapshot
        # wrote image_snapshot too, so the old one goes on and the new
        # one is pre-empted at its next write.
        server = self.server('xenserver')
        old, _action = self.held_at('copy', server)
        self.reset(server)
        new = self.create_image(server)
        self.run_timers()
        self.assertEqual(['copy', 'copy'],
                         [w['step'] for w in self.cloud.held])
        self.cloud.release()
        self.run_timers()
        self.assertEqual('active', old['status'])
        self.assert_preempted(server, new, SNAPSHOT,
                              "'%s'" % PENDING_UPLOAD)
        self.assertIsNone(server['task_state'])

    def test_reset_alone_backup_no_rotation(self):
        server = self.server('libvirt-file')
        kept = [old_backup(self.cloud, server, when)
                for when in (1.0, 2.0, 3.0)]
        self.cloud.hold('backup', server['id'])
        image, action = self.snapshot(server, backup=True)
        self.run_timers()
        self.reset(server)
        self.cloud.release()
        self.run_timers()
        self.assert_preempted(server, image, 'image_backup', None, faults=2)
        self.assertIsNone(server['task_state'])
        self.assertEqual(['image_backup', None], self.task_states(server))
        # backup_instance raised: its event ends Error, nothing rotated.
        self.assertEqual(['Error'], [e['result'] for e in action['events']])
        self.assertEqual('Error', action['message'])
        self.assertEqual(len(kept), len([i for i in kept
                                         if i['id'] in self.cloud.images]))

    def test_reset_during_the_upload(self):
        # Nova clears the task state expecting image_uploading once the
        # upload is over: the uploaded image is deleted.
        server = self.server('libvirt-file')
        image, _action = self.held_at('uploading', server)
        self.reset(server)
        self.cloud.release()
        self.run_timers()
        self.assert_preempted(server, image, UPLOADING, None)
        self.assertEqual(['saving', 'active', 'deleted'],
                         self.image_statuses(image)[-3:])
        self.assertIsNone(server['task_state'])


class TestRotation(base.OperationCase):
    """backup_instance rotates once _snapshot_instance has returned."""

    def backup_with_old_ones(self, *fault):
        """Three older daily backups; a backup with rotation 2.

        fault: its phase and kind.
        """
        server = self.server('libvirt-file')
        old = [old_backup(self.cloud, server, when)
               for when in (1.0, 2.0, 3.0)]
        if fault:
            self.add_fault(server, *fault)
        image, action = self.snapshot(server, backup=True)
        self.run_timers()
        self.assertEqual({}, self.cloud.ops)
        return server, old, image, action

    def left(self, images):
        return [i['id'] in self.cloud.images for i in images]

    def test_done(self):
        _server, old, image, _action = self.backup_with_old_ones()
        self.assertEqual('active', image['status'])
        self.assertEqual([False, False, True], self.left(old))

    def test_image_deleted(self):
        _server, old, image, action = self.backup_with_old_ones(
            'backup', 'image_deleted')
        self.assertNotIn(image['id'], self.cloud.images)
        # The two newest that are left are kept.
        self.assertEqual([False, True, True], self.left(old))
        self.assertEqual(['Success'], [e['result'] for e in action['events']])

    def test_server_deleted(self):
        server, old, image, _action = self.backup_with_old_ones(
            'copy', 'server_deleted')
        self.assertEqual('deleted', server['vm_state'])
        self.assertNotIn(image['id'], self.cloud.images)
        self.assertEqual([False, True, True], self.left(old))

    def test_instance_not_running(self):
        _server, old, _image, _action = self.backup_with_old_ones(
            'copy', 'stuck')
        self.assertEqual([False, True, True], self.left(old))

    def test_driver_error_does_not_rotate(self):
        _server, old, _image, action = self.backup_with_old_ones(
            'copy', 'driver_error')
        self.assertEqual([True, True, True], self.left(old))
        self.assertEqual(['Error'], [e['result'] for e in action['events']])


class TestBounce(base.OperationCase):
    """libvirt's bounce is the step 'bounce'; 'uploading' is the upload."""

    BOUNCING = ('libvirt-file', 'libvirt-lvm', 'libvirt-rbd-fallback')

    def states_until(self, driver, last):
        """The driver's task states up to the last step named last."""
        steps = drivers.order(driver)
        index = max(i for i, s in enumerate(steps) if s.name == last)
        return [s.task_state for s in steps[:index + 1] if s.task_state]

    def hold(self, driver, step):
        server = self.server(driver)
        self.cloud.hold(step, server['id'])
        image, _action = self.snapshot(server)
        self.run_timers()
        self.assertEqual([step], [w['step'] for w in self.cloud.held],
                         driver)
        return server, image

    def finish(self, server, image):
        self.cloud.release()
        self.run_timers()
        self.assertEqual('active', image['status'])
        self.assertIsNone(server['task_state'])

    def test_uploading_holds_the_upload(self):
        for driver in self.BOUNCING:
            server, image = self.hold(driver, 'uploading')
            self.assertEqual(self.states_until(driver, 'uploading'),
                             self.task_states(server), driver)
            self.assertEqual('saving', image['status'], driver)
            capture, = [c for c in self.cloud.captures
                        if c['image_id'] == image['id']]
            self.assertIsNotNone(capture['ended'], driver)
            self.finish(server, image)

    def test_bounce_holds_the_first_image_uploading(self):
        for driver in self.BOUNCING:
            server, image = self.hold(driver, 'bounce')
            self.assertEqual([PENDING, SNAPSHOT, PENDING_UPLOAD, UPLOADING],
                             self.task_states(server), driver)
            self.assertEqual('queued', image['status'], driver)
            self.finish(server, image)

    def test_rbd_uploading_and_pending_upload_unchanged(self):
        for step, state in (('pending_upload', PENDING_UPLOAD),
                            ('uploading', UPLOADING)):
            server, image = self.hold('libvirt-rbd', step)
            self.assertEqual(state, server['task_state'])
            self.assertEqual('queued', image['status'])
            self.finish(server, image)

    def test_fault_at_uploading_fails_the_upload(self):
        for driver in self.BOUNCING:
            server = self.server(driver)
            self.add_fault(server, 'uploading', 'driver_error')
            image, _action = self.snapshot(server)
            self.run_timers()
            self.assertEqual(self.states_until(driver, 'uploading') + [None],
                             self.task_states(server), driver)
            self.assertEqual(['queued', 'saving', 'deleted'],
                             self.image_statuses(image), driver)
