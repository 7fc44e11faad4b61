"""Privacy and security: field encryption, the re-identification store, the audit log, ACLs.

Import the submodules directly (``from novamind.platform.privacy.fieldcrypt import FieldCipher``); this
package module stays empty so importing one part never pulls in the Kafka or MongoDB clients.
"""
