package castore.store.local;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;

/**
 * Directories as DIRECTORY pack entries (their canonical encoding). The index keeps each
 * Directory's tvix size, so checking a parent's children is an index lookup, not a read.
 */
final class LocalDirectoryService implements DirectoryService {
    private final LocalStore store;
    private final PackStore packs;

    LocalDirectoryService(LocalStore store, PackStore packs) {
        this.store = store;
        this.packs = packs;
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        Location l = packs.find(ObjectKind.DIRECTORY, digest);
        if (l == null) {
            return Optional.empty();
        }
        l.source().metadataAhead(l);
        return Optional.of(decode(l, packs.readVerified(l)));
    }

    static Directory decode(Location l, byte[] bytes) throws CorruptedDataException {
        try {
            return Directory.decode(bytes);
        } catch (InvalidDataException e) {
            throw new CorruptedDataException(l.describe() + " is not a valid Directory: " + e.getMessage());
        }
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return packs.find(ObjectKind.DIRECTORY, digest) != null;
    }

    @Override
    public B3Digest put(Directory directory) throws IOException {
        store.beginWrite();
        for (Map.Entry<Name, Node> e : directory.entries().entrySet()) {
            if (e.getValue() instanceof DirectoryNode child) {
                Location l = packs.find(ObjectKind.DIRECTORY, child.digest());
                if (l == null) {
                    throw new InvalidDataException("directory '" + e.getKey() + "' refers to " + child.digest() + ", which is not stored");
                }
                if (l.aux() != child.size()) {
                    throw new InvalidDataException("directory '" + e.getKey() + "' claims size " + child.size()
                            + " but " + child.digest() + " has size " + l.aux());
                }
            }
        }
        B3Digest digest = directory.digest();
        if (packs.findKnown(ObjectKind.DIRECTORY, digest) == null) {
            byte[] encoded = directory.encode();
            packs.append(ObjectKind.DIRECTORY, digest, encoded, 0, encoded.length, directory.size());
        }
        return digest;
    }
}
