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

import os

# OpenStackClient requires these four names of every plugin module. It
# loads the command group openstack.snapphase.v<version>, the version read
# from the cloud's configuration key named by API_VERSION_OPTION (less its
# "os_"), else DEFAULT_API_VERSION. There is one command set, so there is
# no --os-snapphase-api-version option to choose one.
API_NAME = 'snapphase'
API_VERSION_OPTION = 'os_snapphase_api_version'
DEFAULT_API_VERSION = '1'
# The commands use the openstacksdk proxies that OpenStackClient already
# authenticates (client_manager.compute, image and volume), so there is no
# client class of our own and no make_client(); the value is unused.
API_VERSIONS = {
    '1': None,
}


def build_option_parser(parser):
    """Add the global options of the plugin to the OpenStackClient parser."""
    parser.add_argument(
        '--os-snapphase-capture-model',
        metavar='<model>',
        default=os.environ.get('OS_SNAPPHASE_CAPTURE_MODEL'),
        help='What proves that the disk capture of an image-create is over: '
             'image-status (default: the snapshot image is saving, '
             'importing or active, right on every Nova driver; for a '
             'volume-backed server its Cinder snapshots have left '
             'creating) or xenserver (the task '
             'state left image_snapshot: right only for the removed '
             'XenServer and Hyper-V drivers). Also clouds.yaml key '
             'snapphase_capture_model (Env: OS_SNAPPHASE_CAPTURE_MODEL)',
    )
    return parser
