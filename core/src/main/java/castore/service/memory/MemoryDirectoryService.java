package castore.service.memory;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.service.DirectoryService;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** Directories in a map; put checks that every child is present with the claimed size. */
public final class MemoryDirectoryService implements DirectoryService {
    private final ConcurrentHashMap<B3Digest, Directory> directories = new ConcurrentHashMap<>();

    @Override
    public Optional<Directory> get(B3Digest digest) {
        return Optional.ofNullable(directories.get(digest));
    }

    @Override
    public boolean has(B3Digest digest) {
        return directories.containsKey(digest);
    }

    @Override
    public B3Digest put(Directory directory) {
        for (var e : directory.entries().entrySet()) {
            if (e.getValue() instanceof DirectoryNode d) {
                Directory child = directories.get(d.digest());
                if (child == null) {
                    throw new InvalidDataException("directory '" + e.getKey() + "' refers to " + d.digest() + ", which is not stored");
                }
                if (child.size() != d.size()) {
                    throw new InvalidDataException("directory '" + e.getKey() + "' claims size " + d.size() + " but " + d.digest() + " has size " + child.size());
                }
            }
        }
        B3Digest digest = directory.digest();
        directories.putIfAbsent(digest, directory);
        return digest;
    }

    public int count() {
        return directories.size();
    }
}
