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

"""The simulated Cinder v3 and Nova's volume-backed servers."""

import json
from unittest import mock
import urllib.parse

from osc_snapphase.simulator import cinder
from osc_snapphase.simulator import client
from osc_snapphase.tests.functional.simulator import base

MV = {'OpenStack-API-Version': 'compute 2.45'}


class CinderTestCase(base.SimulatorTestCase):

    def setUp(self):
        super().setUp()
        self.project_id = self.sim.cloud.projects['demo']['id']
        self.cirros = next(i['id'] for i in self.sim.cloud.images.values()
                           if i['name'] == 'cirros')

    def vcall(self, method, path, body=None, version=None, **kwargs):
        headers = kwargs.pop('headers', {})
        if version:
            headers['OpenStack-API-Version'] = 'volume ' + version
        return self.call(method, '/volume/v3/%s%s' % (self.project_id, path),
                         body, headers=headers, **kwargs)

    def create_volume(self, name='vol1', size=1, **fields):
        fields.update(name=name, size=size)
        reply = self.vcall('POST', '/volumes', {'volume': fields})
        self.assertEqual(202, reply.status)
        volume = reply.body['volume']
        self.control.wait_for(lambda s: self.control.volume(
            volume['id'])['status'] == 'available')
        return volume

    def volume(self, volume_id):
        return self.vcall('GET', '/volumes/' + volume_id).body['volume']

    def snapshot(self, snapshot_id):
        return self.vcall('GET', '/snapshots/' + snapshot_id)

    def boot(self, name, bdms, image_ref=''):
        reply = self.call('POST', '/compute/v2.1/servers', {'server': {
            'name': name, 'flavorRef': '1', 'imageRef': image_ref,
            'networks': 'none', 'block_device_mapping_v2': bdms}},
            headers={'OpenStack-API-Version': 'compute 2.96'})
        return reply

    def wait_snapshot(self, snapshot_id, status):
        self.control.wait_for(lambda s: any(
            v['id'] == snapshot_id and v['status'] == status
            for v in s['volume_snapshots']))


class TestCinderApi(CinderTestCase):

    def test_version_discovery(self):
        reply = self.call('GET', '/volume/v3/', token='')
        self.assertEqual(200, reply.status)
        (version,) = reply.body['versions']
        self.assertEqual(('v3.0', 'CURRENT', '3.0', '3.71'), (
            version['id'], version['status'], version['min_version'],
            version['version']))
        self.assertEqual(self.base + '/volume/v3/', [
            link['href'] for link in version['links']
            if link['rel'] == 'self'][0])

    def test_catalog(self):
        catalog = {e['type']: e['endpoints'][0]['url'] for e in
                   self.authenticate().body['token']['catalog']}
        url = '%s/volume/v3/%s' % (self.base, self.project_id)
        self.assertEqual(url, catalog['block-storage'])
        self.assertEqual(url, catalog['volumev3'])

    def test_volume_lifecycle_and_filters(self):
        volume = self.create_volume('data', 2, imageRef=self.cirros)
        self.assertEqual('creating', volume['status'])
        self.create_volume('other')
        shown = self.vcall('GET', '/volumes/' + volume['id'], version='3.71')
        self.assertEqual('volume 3.71',
                         shown.headers['OpenStack-API-Version'])
        body = shown.body['volume']
        self.assertEqual(('data', 2, 'available', 'true', []), (
            body['name'], body['size'], body['status'], body['bootable'],
            body['attachments']))
        self.assertEqual(self.cirros,
                         body['volume_image_metadata']['image_id'])
        self.assertTrue(body['consumes_quota'])
        named = self.vcall('GET', '/volumes/detail?name=data').body
        self.assertEqual([volume['id']], [v['id'] for v in named['volumes']])

    def test_every_full_page_has_a_next_link(self):
        # As Cinder: a page full at osapi_max_limit (no limit asked for)
        # has a next link too; the last page has none.
        for name in ('a', 'b', 'c'):
            self.create_volume(name)
        with mock.patch.object(cinder, 'MAX_LIMIT', 2):
            page = self.vcall('GET', '/volumes/detail').body
            self.assertEqual(2, len(page['volumes']))
            (link,) = page['volumes_links']
            self.assertEqual('next', link['rel'])
            query = urllib.parse.parse_qs(
                urllib.parse.urlsplit(link['href']).query)
            self.assertEqual([page['volumes'][-1]['id']], query['marker'])
            last = self.vcall('GET', '/volumes/detail?marker='
                              + query['marker'][0]).body
        self.assertEqual(1, len(last['volumes']))
        self.assertNotIn('volumes_links', last)

    def test_errors_as_cinder(self):
        missing = self.vcall('GET', '/volumes/nope')
        self.assertEqual(404, missing.status)
        self.assertEqual({'itemNotFound': {
            'code': 404, 'message': 'Volume nope could not be found.'}},
            missing.body)
        self.assertEqual(404, self.snapshot('nope').status)
        self.assertEqual(
            'Snapshot nope could not be found.',
            self.snapshot('nope').body['itemNotFound']['message'])
        too_new = self.vcall('GET', '/volumes/detail', version='3.99')
        self.assertEqual(406, too_new.status)
        self.assertIn('Minimum is 3.0 and maximum is 3.71',
                      too_new.body['computeFault']['message'])
        bad = self.vcall('POST', '/volumes', {'volume': {'size': 0}})
        self.assertEqual(400, bad.status)
        self.assertIn('badRequest', bad.body)
        self.assertEqual(401, self.vcall('GET', '/volumes/detail',
                                         token='simtok-bogus').status)


class TestBootFromVolume(CinderTestCase):

    def test_boot_from_existing_volume(self):
        volume = self.create_volume('root', imageRef=self.cirros)
        reply = self.boot('bfv', [{
            'uuid': volume['id'], 'boot_index': 0,
            'source_type': 'volume', 'destination_type': 'volume'}])
        self.assertEqual(202, reply.status)
        server_id = reply.body['server']['id']
        attached = self.volume(volume['id'])
        self.assertEqual('in-use', attached['status'])
        self.assertEqual([(server_id, '/dev/vda')], [
            (a['server_id'], a['device']) for a in attached['attachments']])
        server = self.call('GET', '/compute/v2.1/servers/' + server_id,
                           headers={'OpenStack-API-Version':
                                    'compute 2.96'}).body['server']
        self.assertEqual('', server['image'])
        self.assertEqual(
            [{'id': volume['id'], 'delete_on_termination': False}],
            server['os-extended-volumes:volumes_attached'])
        attachments = self.call(
            'GET', '/compute/v2.1/servers/%s/os-volume_attachments'
            % server_id).body['volumeAttachments']
        self.assertEqual([volume['id']], [a['volumeId'] for a in attachments])
        self.assertTrue(self.control.server(server_id)['volume_backed'])
        # A volume in use cannot boot a second server.
        second = self.boot('again', [{
            'uuid': volume['id'], 'boot_index': 0,
            'source_type': 'volume', 'destination_type': 'volume'}])
        self.assertEqual(400, second.status)

    def test_boot_from_volume_of_image(self):
        # As openstack server create --image cirros --boot-from-volume 3.
        reply = self.boot('bfv', [{
            'uuid': self.cirros, 'boot_index': 0, 'source_type': 'image',
            'destination_type': 'volume', 'volume_size': 3,
            'delete_on_termination': True}])
        self.assertEqual(202, reply.status)
        server_id = reply.body['server']['id']
        (volume,) = self.vcall('GET', '/volumes/detail').body['volumes']
        self.assertEqual((3, 'in-use', 'true'), (
            volume['size'], volume['status'], volume['bootable']))
        self.assertEqual(server_id, volume['attachments'][0]['server_id'])
        self.assertEqual(400, self.boot('bad', [{
            'uuid': self.cirros, 'boot_index': 0, 'source_type': 'image',
            'destination_type': 'volume'}]).status)

    def test_image_backed_with_local_root_stays_image_backed(self):
        reply = self.boot('vm', [{
            'uuid': self.cirros, 'boot_index': 0, 'source_type': 'image',
            'destination_type': 'local', 'delete_on_termination': True}],
            image_ref=self.cirros)
        self.assertEqual(202, reply.status)
        server = self.control.server(reply.body['server']['id'])
        self.assertFalse(server['volume_backed'])
        self.assertEqual(self.cirros, server['image']['id'])

    def test_invalid_mappings(self):
        missing = self.boot('vm', [{
            'uuid': 'nope', 'boot_index': 0, 'source_type': 'volume',
            'destination_type': 'volume'}])
        self.assertEqual(400, missing.status)
        self.assertEqual('Block Device Mapping is Invalid: failed to get '
                         'volume nope.',
                         missing.body['badRequest']['message'])
        no_root = self.boot('vm', [])
        self.assertEqual(400, no_root.status)
        self.assertIn('Boot sequence', no_root.body['badRequest']['message'])

    def test_delete_detaches_and_deletes_on_termination(self):
        kept = self.create_volume('kept', imageRef=self.cirros)
        server_id = self.boot('bfv', [
            {'uuid': kept['id'], 'boot_index': 0, 'source_type': 'volume',
             'destination_type': 'volume'},
            {'boot_index': -1, 'source_type': 'blank',
             'destination_type': 'volume', 'volume_size': 1,
             'delete_on_termination': True}]).body['server']['id']
        self.control.wait_for(lambda s: self.control.server(server_id)[
            'status'] == 'ACTIVE')
        self.assertEqual(2, len(self.vcall('GET', '/volumes/detail').body[
            'volumes']))
        self.assertEqual(204, self.call(
            'DELETE', '/compute/v2.1/servers/' + server_id).status)
        self.control.wait_for(lambda s: self.control.server(server_id)[
            'status'] == 'DELETED')
        volumes = self.vcall('GET', '/volumes/detail').body['volumes']
        self.assertEqual([(kept['id'], 'available', [])], [
            (v['id'], v['status'], v['attachments']) for v in volumes])

    def test_control_creates_a_real_volume(self):
        server = self.control.create_server('bfv', volume_backed=True)
        (volume_id,) = [v['id'] for v in server[
            'os-extended-volumes:volumes_attached']]
        volume = self.volume(volume_id)
        self.assertEqual(('in-use', 'true', 1), (
            volume['status'], volume['bootable'], volume['size']))
        self.assertEqual(server['id'], volume['attachments'][0]['server_id'])
        self.assertEqual('', server['image'])


class TestVolumeBackedSnapshot(CinderTestCase):

    def setUp(self):
        super().setUp()
        self.server = self.control.create_server('bfv', volume_backed=True)
        self.sid = self.server['id']
        self.volume_id = self.server[
            'os-extended-volumes:volumes_attached'][0]['id']

    def image_snapshots(self, image):
        mappings = json.loads(image['block_device_mapping'])
        return [m['snapshot_id'] for m in mappings]

    def test_create_image_as_nova_34(self):
        self.control.hold('volume_snapshot', self.sid)
        reply = self.create_image(self.sid, 'snap1')
        self.assertEqual(202, reply.status)
        image_id = reply.body['image_id']
        image = self.call('GET', '/image/v2/images/' + image_id).body
        self.assertEqual(('active', 0, 'raw', 'bare'), (
            image['status'], image['size'], image['disk_format'],
            image['container_format']))
        self.assertEqual('True', image['bdm_v2'])
        self.assertEqual('/dev/vda', image['root_device_name'])
        self.assertNotIn('instance_uuid', image)
        self.assertNotIn('image_type', image)
        (mapping,) = json.loads(image['block_device_mapping'])
        self.assertEqual(('snapshot', 'volume', 0, '/dev/vda', 1), (
            mapping['source_type'], mapping['destination_type'],
            mapping['boot_index'], mapping['device_name'],
            mapping['volume_size']))
        # Held: the snapshot stays creating, the server has no task state.
        self.control.wait_held('volume_snapshot', self.sid)
        snap = self.snapshot(mapping['snapshot_id']).body['snapshot']
        self.assertEqual(('creating', self.volume_id, 'snapshot for snap1'),
                         (snap['status'], snap['volume_id'], snap['name']))
        self.assertEqual(self.project_id, snap[
            'os-extended-snapshot-attributes:project_id'])
        self.assertEqual([None], self.task_states(self.sid))
        # A second createImage is accepted meanwhile (no task state).
        second = self.create_image(self.sid, 'snap2')
        self.assertEqual(202, second.status)
        self.assertEqual(2, self.control.release('volume_snapshot',
                                                 self.sid))
        self.wait_snapshot(mapping['snapshot_id'], 'available')
        self.assertEqual([None], self.task_states(self.sid))
        self.control.wait_for(lambda s: len(
            self.control.captures(self.sid)) == 2)
        captures = self.control.captures(self.sid)
        self.assertEqual({image_id, second.body['image_id']},
                         {c['image_id'] for c in captures})
        first = next(c for c in captures if c['image_id'] == image_id)
        self.assertEqual(('cinder', None), (first['driver'],
                                            first['task_state']))
        # Created before the hold, fixed at the release, ended after it.
        self.assertLess(first['started'], first['point_in_time'])
        self.assertLessEqual(first['point_in_time'], first['ended'])
        self.assertEqual((self.volume_id, 'available'), (
            first['volume_id'], first['status']))

    def test_instance_action_event(self):
        self.create_image(self.sid)
        actions = self.call(
            'GET', '/compute/v2.1/servers/%s/os-instance-actions'
            % self.sid).body['instanceActions']
        detail = self.call(
            'GET', '/compute/v2.1/servers/%s/os-instance-actions/%s'
            % (self.sid, actions[0]['request_id'])).body['instanceAction']
        self.assertEqual('createImage', detail['action'])
        self.assertEqual([('api_snapshot_instance', 'Success')], [
            (e['event'], e['result']) for e in detail['events']])

    def test_fault_snapshot_error(self):
        self.control.add_fault('volume_snapshot', 'volume_snapshot_error')
        image_id = self.create_image(self.sid).body['image_id']
        image = self.call('GET', '/image/v2/images/' + image_id).body
        (snap_id,) = self.image_snapshots(image)
        self.wait_snapshot(snap_id, 'error')
        # The image stays active, as Nova leaves it.
        self.assertEqual('active', self.control.image(image_id)['status'])
        self.control.wait_for(lambda s: self.control.captures(self.sid))
        (capture,) = self.control.captures(self.sid)
        self.assertEqual((snap_id, 'error', None), (
            capture['snapshot_id'], capture['status'],
            capture['point_in_time']))

    def test_fault_snapshot_deleted(self):
        self.control.add_fault('volume_snapshot', 'volume_snapshot_deleted',
                               server='bfv')
        image_id = self.create_image(self.sid).body['image_id']
        image = self.call('GET', '/image/v2/images/' + image_id).body
        (snap_id,) = self.image_snapshots(image)
        self.control.wait_for(lambda s: not s['volume_snapshots'])
        self.assertEqual(404, self.snapshot(snap_id).status)

    def test_fault_rule_checks(self):
        error = self.assertRaises(
            client.ControlError, self.control.add_fault, 'volume_snapshot',
            'driver_error')
        self.assertEqual(400, error.status)
        self.assertIn('kind must be one of', error.body)

    def test_create_backup_refused(self):
        reply = self.call(
            'POST', '/compute/v2.1/servers/%s/action' % self.sid,
            {'createBackup': {'name': 'b', 'backup_type': 'daily',
                              'rotation': 1}}, headers=MV)
        self.assertEqual(400, reply.status)
        self.assertEqual({'badRequest': {
            'code': 400, 'message': 'Backup is not supported for '
                                    'volume-backed instances.'}}, reply.body)
