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

"""The fixture proven with core ``openstack`` commands against real Nova.

These pin what nova 34 really does during ``createImage`` and
``createBackup``; the osc-snapphase commands rely on exactly this.

The tests wait for events, never for a fixed time: a phase a test needs
to see is held by the driver until the test (or the CLI it samples with)
has seen it; a driver failure is injected in a held phase, released once
core ``openstack`` has its answer, so that Nova cannot delete the image
before the CLI has looked it up.
"""

from osc_snapphase.tests.functional_nova import base
from osc_snapphase.tests.functional_nova import driver

ORDER = ['image_snapshot_pending', 'image_snapshot', 'image_pending_upload',
         'image_uploading', None]


class TestCoreCommands(base.NovaTestCase):

    def test_server_create_wait(self):
        server = self.openstack_json(
            'server', 'create', '--flavor', base.FLAVOR, '--image',
            base.IMAGE_ID, '--nic', 'none', 'vm1', '--wait')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('active', server['OS-EXT-STS:vm_state'])
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual(server['id'], shown['id'])
        self.assertIn(shown['OS-EXT-STS:power_state'], (1, 'Running'))

    def test_image_create_every_phase_held(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=driver.PHASES)
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        self.assertEqual('queued', image['status'])
        self.assertEqual(server_id, image['properties']['instance_uuid'])
        self.assertEqual('snapshot', image['properties']['image_type'])
        expected = [('pending', 'image_snapshot_pending', 'queued'),
                    ('snapshot', 'image_snapshot', 'queued'),
                    ('pending_upload', 'image_pending_upload', 'queued'),
                    ('upload', 'image_uploading', 'saving')]
        for phase, task_state, image_status in expected:
            plan.wait_entered(phase)
            shown = self.openstack_json('server', 'show', 'vm1')
            self.assertEqual(task_state, shown['OS-EXT-STS:task_state'],
                             phase)
            self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
            self.assertEqual('ACTIVE', shown['status'])
            self.assertEqual(image_status, self.openstack_json(
                'image', 'show', image['id'])['status'], phase)
            plan.release(phase)
        self.assertEqual('ok', plan.wait_done())
        self.cloud.wait_task_state(server_id, None)
        self.assertEqual('active', self.openstack_json(
            'image', 'show', image['id'])['status'])

    def test_image_create_sampled_with_slow_driver(self):
        server_id = self.boot('vm1')
        # A slow driver: each phase lasts until `openstack server show`,
        # sampling in a loop, has reported its task state.
        plan = self.plan('vm1', hold=driver.PHASES)
        phase_of = {'image_snapshot_pending': 'pending',
                    'image_snapshot': 'snapshot',
                    'image_pending_upload': 'pending_upload',
                    'image_uploading': 'upload'}
        self.openstack('server', 'image', 'create', 'vm1', '--name', 's')
        seen = []
        for _sample in range(50):
            state = self.openstack_json(
                'server', 'show', 'vm1', '-c',
                'OS-EXT-STS:task_state')['OS-EXT-STS:task_state']
            if not seen or seen[-1] != state:
                seen.append(state)
            if state is None:
                break
            phase = phase_of[state]
            if plan.entered[phase].is_set():
                # Sample again once Nova has moved on (read directly).
                plan.release(phase)
                self.wait_for(
                    lambda: self.cloud.task_state(server_id) != state,
                    timeout=60, what='task state after %s' % state)
        self.assertIsNone(seen[-1], seen)
        self.assertEqual('ok', plan.wait_done())
        positions = [ORDER.index(s) for s in seen]
        self.assertEqual(sorted(positions), positions, seen)
        self.assertEqual(ORDER, seen)
        self.assertEqual(['active'], [
            i['status'] for i in self.images_of(server_id)])

    def test_backup_create(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('pending', 'snapshot', 'upload'))
        image = self.openstack_json('server', 'backup', 'create', 'vm1',
                                    '--name', 'bk1')
        self.assertEqual('backup', image['properties']['image_type'])
        # The API sets image_backup itself: there is no *_pending state.
        for phase, task_state in (('pending', 'image_backup'),
                                  ('snapshot', 'image_backup'),
                                  ('upload', 'image_uploading')):
            plan.wait_entered(phase)
            self.assertEqual(task_state, self.openstack_json(
                'server', 'show', 'vm1')['OS-EXT-STS:task_state'])
            if phase == 'upload':
                # Unlike createImage, nova 34 runs backup_instance inside
                # the RPC handler: its event stays open until the end.
                event = self._event(server_id, 'createBackup')
                self.assertIsNone(event['result'])
                self.assertIsNone(event['finish_time'])
            plan.release(phase)
        self.assertEqual('ok', plan.wait_done())
        self.cloud.wait_task_state(server_id, None)
        self.assertEqual('active', self.openstack_json(
            'image', 'show', image['id'])['status'])
        self.wait_for(lambda: self._event(server_id, 'createBackup')[
            'result'] == 'Success', what='backup event Success')

    def test_backup_driver_failure_event_is_error(self):
        server_id = self.boot('vm1')
        # Held: core looks the backup up by name after the request; failed
        # at once, Nova could delete it first ("No Image found", exit 1).
        plan = self.plan('vm1', fail_in='upload', hold=('upload',))
        image = self.openstack_json('server', 'backup', 'create', 'vm1',
                                    '--name', 'bk1')
        plan.release()
        self.assertIsInstance(plan.wait_done(), driver.InjectedFailure)
        self.cloud.wait_task_state(server_id, None)
        self.wait_for(lambda: self._event(server_id, 'createBackup')[
            'result'] == 'Error', what='backup event Error')
        self.assertEqual('Error', self._action(server_id,
                                               'createBackup')['message'])
        self.assertIn('InjectedFailure', self._event(
            server_id, 'createBackup')['traceback'])
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.assertIsNone(shown.get('fault'))
        self.openstack('image', 'show', image['id'], expect=1)

    def test_second_image_create_while_busy_is_409(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        self.openstack('server', 'image', 'create', 'vm1', '--name', 'one')
        plan.wait_entered('upload')
        result = self.openstack('server', 'image', 'create', 'vm1',
                                '--name', 'two', expect=1)
        self.assertIn('ConflictException: 409', result.stderr)
        self.assertIn("Cannot 'createImage' instance %s while it is in "
                      "task_state image_uploading" % server_id,
                      result.stderr)
        result = self.openstack('server', 'backup', 'create', 'vm1',
                                '--name', 'three', expect=1)
        self.assertIn("Cannot 'createBackup' instance %s while it is in "
                      "task_state image_uploading" % server_id,
                      result.stderr)
        self.assertEqual(['one'], [i['name']
                                   for i in self.images_of(server_id)])
        plan.release()
        self.assertEqual('ok', plan.wait_done())
        self.cloud.wait_task_state(server_id, None)

    def test_driver_failure_in_upload_reverts_and_deletes_image(self):
        server_id = self.boot('vm1')
        # Held until core has looked the image up (see above).
        plan = self.plan('vm1', fail_in='upload', hold=('upload',))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        plan.release()
        self.assertIsInstance(plan.wait_done(), driver.InjectedFailure)
        self.cloud.wait_task_state(server_id, None)
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.assertEqual('ACTIVE', shown['status'])
        self.assertIsNone(shown.get('fault'))
        result = self.openstack('image', 'show', image['id'], expect=1)
        self.assertIn('No Image found', result.stderr)
        self.assertEqual([], self.images_of(server_id))
        # nova 34 runs the snapshot as a separate task: the instance
        # action's compute event ended Success before the failure.
        action = self._action(server_id, 'createImage')
        events = {e['event']: e['result'] for e in action['events']}
        self.assertEqual('Success', events['compute_snapshot_instance'])
        self.assertIsNone(action['message'])

    def _event(self, server_id, name):
        (event,) = self._action(server_id, name)['events']
        return event

    def _action(self, server_id, name):
        for action in self.cloud.instance_actions(server_id):
            if action['action'] == name:
                resp = self.cloud.nova_get('/servers/%s/os-instance-actions/'
                                           '%s' % (server_id,
                                                   action['request_id']))
                return resp.json()['instanceAction']
        self.fail('no %s action' % name)

    def test_image_deleted_during_snapshot(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('snapshot', 'pending_upload'))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        plan.wait_entered('snapshot')
        self.openstack('image', 'delete', image['id'])
        plan.release('snapshot')
        # Nova does not notice at once: the driver carries on into the
        # next phase and fails only when it next talks to Glance.
        plan.wait_entered('pending_upload')
        self.assertEqual('image_pending_upload',
                         self.cloud.task_state(server_id))
        plan.release()
        self.assertIsInstance(plan.wait_done(),
                              driver.exception.ImageNotFound)
        self.cloud.wait_task_state(server_id, None)
        self.assertEqual('active', self.cloud.server(server_id)[
            'OS-EXT-STS:vm_state'])
        self.openstack('image', 'show', image['id'], expect=1)

    def test_instance_not_running_in_upload_leaves_task_state_stuck(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', not_running_in='upload', hold=('upload',))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        plan.release()
        self.assertIsInstance(plan.wait_done(), driver.exception.
                              InstanceNotRunning)
        # Deleting the image is the last thing Nova does about it
        # (ComputeManager._snapshot_instance swallows InstanceNotRunning;
        # nothing reverts the task state after the delete).
        self.wait_for(lambda: not self.images_of(server_id),
                      what='image deleted')
        shown = self.openstack_json('server', 'show', 'vm1')
        self.assertEqual('image_uploading', shown['OS-EXT-STS:task_state'])
        self.assertEqual('active', shown['OS-EXT-STS:vm_state'])
        self.openstack('image', 'show', image['id'], expect=1)
        result = self.openstack('server', 'image', 'create', 'vm1',
                                '--name', 'snap2', expect=1)
        self.assertIn('task_state image_uploading', result.stderr)
        # Only an admin reset clears it.
        self.openstack('server', 'set', '--state', 'active',
                       '--auto-approve', 'vm1')
        self.cloud.wait_task_state(server_id, None)

    def test_server_deleted_during_snapshot(self):
        server_id = self.boot('vm1')
        plan = self.plan('vm1', hold=('upload',))
        image = self.openstack_json('server', 'image', 'create', 'vm1',
                                    '--name', 'snap1')
        plan.wait_entered('upload')
        self.openstack('server', 'delete', 'vm1')
        self.wait_for(lambda: self.cloud.server(server_id) is None,
                      what='server gone')
        # The image outlives the server until the snapshot task notices.
        self.assertEqual([('snap1', 'saving')], [
            (i['name'], i['status']) for i in self.images_of(server_id)])
        plan.release()
        self.assertIsInstance(plan.wait_done(),
                              driver.exception.InstanceNotFound)
        self.wait_for(lambda: not self.images_of(server_id),
                      what='image deleted')
        # Not even an admin gets a deleted server from GET /servers/{id};
        # only the admin list with deleted=True shows it as DELETED.
        result = self.openstack('server', 'show', server_id, expect=1)
        self.assertIn('No Server found', result.stderr)
        self.openstack('image', 'show', image['id'], expect=1)
        listed = self.openstack_json('server', 'list', '--deleted',
                                     '--all-projects')
        self.assertEqual([(server_id, 'DELETED')], [
            (s['ID'], s['Status']) for s in listed])
