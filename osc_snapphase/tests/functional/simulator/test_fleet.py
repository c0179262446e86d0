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

"""A fleet listing over HTTP: Date header, next link, control server.

The listing handlers themselves are tested in-process in
tests/unit/simulator/test_fleet.py.
"""

from osc_snapphase.tests.functional.simulator import base


class TestOverHTTP(base.SimulatorTestCase):

    def test_date_header_next_link_and_control_server(self):
        created = self.control.create_servers(3, prefix='h')
        reply = self.call('GET', '/compute/v2.1/servers?limit=2')
        self.assertIsNotNone(reply.headers['Date'])
        href = reply.body['servers_links'][0]['href']
        self.assertTrue(href.startswith(self.base + '/compute/v2.1/'))
        rest_page = self.call('GET', href[len(self.base):]).body
        self.assertEqual(1, len(rest_page['servers']))
        server = self.control.server(created[0]['id'])
        self.assertEqual('h1', server['name'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertIsNone(self.control.server('no-such-server'))
