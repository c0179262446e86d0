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

"""Sphinx configuration of the osc-snapphase release notes."""

# -- General configuration ---------------------------------------------------

extensions = [
    'openstackdocstheme',
    'reno.sphinxext',
]

openstackdocs_repo_name = 'openstack/osc-snapphase'
openstackdocs_use_storyboard = False
openstackdocs_bug_project = 'osc-snapphase'
openstackdocs_bug_tag = 'releasenotes'
openstackdocs_auto_name = False

templates_path = []
source_suffix = '.rst'
master_doc = 'index'

project = 'osc-snapphase Release Notes'
copyright = '2025, osc-snapphase developers'

# The release notes are not versioned documents: no version in the title,
# and no git tag is needed to build them.
version = ''
release = ''

exclude_patterns = []
pygments_style = 'native'
smartquotes = False

# -- Options for HTML output -------------------------------------------------

html_theme = 'openstackdocs'
html_static_path = []
htmlhelp_basename = 'osc-snapphaseReleaseNotesdoc'

# -- Options for Internationalization output ---------------------------------

locale_dirs = ['locale/']
