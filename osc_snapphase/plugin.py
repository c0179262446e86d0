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

"""OpenStackClient plugin module for osc-snapphase.

``openstack`` imports this module on every run, ``openstack --version``
included, and an error here breaks every ``openstack`` command. It therefore
defines constants and the option parser hook only and imports nothing beyond
the standard library.
"""

import logging

LOG = logging.getLogger(__name__)

API_NAME = 'snapphase'
API_VERSION_OPTION = 'os_snapphase_api_version'
DEFAULT_API_VERSION = '1'
# The commands use the openstacksdk proxies that OpenStackClient already
# authenticates (client_manager.compute and client_manager.image), so there is
# no client class of our own and no make_client(); the value is unused.
API_VERSIONS = {
    '1': None,
}


def build_option_parser(parser):
    """Add the global options of the plugin to the OpenStackClient parser."""
    parser.add_argument(
        '--os-snapphase-api-version',
        metavar='<snapphase-api-version>',
        default=DEFAULT_API_VERSION,
        help='snapphase command set version (default: %s)'
        % DEFAULT_API_VERSION,
    )
    return parser
