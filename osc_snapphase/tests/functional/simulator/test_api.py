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

"""Tests of Keystone, Nova basics, microversions and the control API."""

import time
from unittest import mock

from keystoneauth1 import access
from keystoneauth1 import discover

from osc_snapphase.simulator import client
from osc_snapphase.simulator import runner
from osc_snapphase.tests.functional.simulator import base


class TestKeystone(base.SimulatorTestCase):

    def test_token_and_catalog(self):
        reply = self.authenticate()
        self.assertEqual(201, reply.status)
        token = reply.headers['X-Subject-Token']
        self.assertTrue(token.startswith('simtok-'))
        catalog = {e['type']: e['endpoints'][0]['url']
                   for e in reply.body['token']['catalog']}
        self.assertEqual(self.base + '/compute/v2.1', catalog['compute'])
        self.assertEqual(self.base + '/image', catalog['image'])
        self.assertIn(token, self.sim.cloud.tokens)

    def test_token_read_by_keystoneauth(self):
        reply = self.authenticate('admin')
        token = access.create(body=reply.body,
                              auth_token=reply.headers['X-Subject-Token'])
        cloud = self.sim.cloud
        self.assertEqual((cloud.projects['admin']['id'], 'admin'),
                         (token.project_id, token.username))
        self.assertEqual(['admin', 'member', 'reader'],
                         sorted(token.role_names))
        self.assertEqual(self.base + '/compute/v2.1',
                         token.service_catalog.url_for(
                             service_type='compute', interface='public',
                             region_name='RegionOne'))
        lifetime = token.expires - token.issued
        self.assertEqual(3600, lifetime.total_seconds())
        self.assertFalse(token.will_expire_soon(stale_duration=3000))

    def test_versions_discovered_by_keystoneauth(self):
        body = self.call('GET', '/identity', token='').body
        versions = discover.get_version_data(
            mock.Mock(get=mock.Mock(return_value=mock.Mock(
                json=mock.Mock(return_value=body)))), self.base + '/identity')
        self.assertEqual([('v3.14', self.base + '/identity/v3/')],
                         [(v['id'], v['links'][0]['href'])
                          for v in versions])

    def test_unscoped_and_other_methods(self):
        record = self.sim.cloud.users['demo']
        reply = self.call('POST', '/identity/v3/auth/tokens', {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': 'demo', 'domain': {'name': 'Default'},
                'password': record['password']}}}}})
        self.assertEqual(201, reply.status)
        self.assertNotIn('catalog', reply.body['token'])
        reply = self.call('POST', '/identity/v3/auth/tokens', {'auth': {
            'identity': {'methods': ['application_credential']}}})
        self.assertEqual(401, reply.status)

    def test_wrong_password(self):
        reply = self.authenticate(password='nope')
        self.assertEqual(401, reply.status)
        self.assertEqual(401, reply.body['error']['code'])

    def test_missing_and_revoked_token(self):
        self.assertEqual(401, self.call('GET', '/compute/v2.1/servers',
                                        token='simtok-bogus').status)
        self.assertEqual(200, self.call('GET', '/compute/v2.1/servers')
                         .status)
        self.assertEqual(1, self.control.revoke_tokens())
        self.assertEqual(401, self.call('GET', '/compute/v2.1/servers')
                         .status)

    def test_token_expiry(self):
        self.control.configure(token_lifetime=0.1)
        self.token()
        time.sleep(0.15)
        self.assertEqual(401, self.call('GET', '/image/v2/images').status)


class TestNova(base.SimulatorTestCase):

    def test_microversion_headers_and_406(self):
        reply = self.call('GET', '/compute/v2.1/servers', headers={
            'X-OpenStack-Nova-API-Version': '2.60'})
        self.assertEqual('compute 2.60',
                         reply.headers['OpenStack-API-Version'])
        self.assertIn('OpenStack-API-Version', reply.headers['Vary'])
        reply = self.call('GET', '/compute/v2.1/servers', headers={
            'OpenStack-API-Version': 'compute 2.97'})
        self.assertEqual(406, reply.status)

    def test_version_discovery(self):
        body = self.call('GET', '/compute/v2.1', token='').body
        self.assertEqual('2.96', body['version']['version'])
        self.assertEqual('2.1', body['version']['min_version'])

    def test_list_filters_and_paging(self):
        self.control.create_servers(5, prefix='w')
        self.control.create_server('other')
        names = [s['name'] for s in self.call(
            'GET', '/compute/v2.1/servers/detail?name=^w').body['servers']]
        self.assertEqual(5, len(names))
        page = self.call('GET', '/compute/v2.1/servers?limit=2').body
        self.assertEqual(2, len(page['servers']))
        self.assertIn('marker=', page['servers_links'][0]['href'])
        rest = self.call('GET', '/compute/v2.1/servers?marker=%s'
                         % page['servers'][1]['id']).body['servers']
        self.assertEqual(4, len(rest))

    def test_create_build_then_active_and_delete(self):
        reply = self.call('POST', '/compute/v2.1/servers', {'server': {
            'name': 'n', 'flavorRef': '1', 'networks': 'none',
            'imageRef': self.sim.cloud.images and next(
                i['id'] for i in self.sim.cloud.images.values())}})
        self.assertEqual(202, reply.status)
        sid = reply.body['server']['id']
        self.control.wait_for(
            lambda s: self.control.server(sid)['status'] == 'ACTIVE')
        self.assertEqual(204, self.call(
            'DELETE', '/compute/v2.1/servers/' + sid).status)
        self.control.wait_for(
            lambda s: self.control.server(sid)['status'] == 'DELETED')
        changes = [(e['field'], e['new'])
                   for e in self.control.log(resource_id=sid)]
        self.assertEqual(
            [('status', 'BUILD'), ('task_state', 'spawning'),
             ('status', 'ACTIVE'), ('task_state', 'deleting'),
             ('status', 'DELETED')],
            [c for c in changes if c[0] == 'status'
             or c[1] in ('spawning', 'deleting')])
        self.assertEqual(404, self.call(
            'GET', '/compute/v2.1/servers/' + sid).status)

    def test_hide_ext_sts(self):
        sid = self.control.create_server('h')['id']
        self.control.configure(hide_ext_sts=True)
        server = self.call('GET', '/compute/v2.1/servers/' + sid
                           ).body['server']
        self.assertNotIn('OS-EXT-STS:task_state', server)


class TestControl(base.SimulatorTestCase):

    def test_request_counts_are_templated(self):
        sid = self.control.create_server('c')['id']
        self.control.reset_requests()
        self.call('GET', '/compute/v2.1/servers/' + sid)
        self.call('GET', '/compute/v2.1/servers/' + sid)
        counts = self.control.request_counts()
        self.assertEqual(2, counts['GET /compute/v2.1/servers/{id}'])
        self.assertEqual(1, counts['POST /identity/v3/auth/tokens'])

    def test_secrets_only_for_tests(self):
        error = self.assertRaises(client.ControlError, self.control.secrets)
        self.assertEqual(403, error.status)
        self.assertIn('--serve-secrets', error.body)
        self.assertNotIn(self.token(), error.body)

    def test_expired_tokens_forgotten_but_listed_as_secrets(self):
        self.sim = runner.Simulator(durations=self.durations,
                                    serve_secrets=True).start()
        self.addCleanup(self.sim.stop)
        self.base = self.sim.cloud.base_url
        self.control = client.ControlClient(self.sim.control_url)
        self.control.configure(token_lifetime=0)
        expired = self.authenticate().headers['X-Subject-Token']
        self.control.configure(token_lifetime=3600)
        live = self.authenticate().headers['X-Subject-Token']
        self.assertEqual([live], list(self.sim.cloud.tokens))
        self.assertEqual(401, self.call('GET', '/compute/v2.1/servers',
                                        token=expired).status)
        secrets = self.control.secrets()
        self.assertEqual([expired, live], secrets['tokens'])
        self.assertIn(self.sim.cloud.users['admin']['password'],
                      secrets['passwords'])

    def test_log_has_times(self):
        sid = self.control.create_server('c')['id']
        entry = self.control.log(resource_id=sid)[-1]
        self.assertIsInstance(entry['time'], float)
        self.assertIsInstance(entry['monotonic'], float)
