package castore.fs;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.service.DirectoryService;
import castore.service.ForwardingDirectoryService;
import java.io.IOException;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Wraps a directory service: records which Directories were fetched, and can hide stored ones (as if lost). */
final class InstrumentedDirectoryService extends ForwardingDirectoryService {
    final Set<B3Digest> fetched = ConcurrentHashMap.newKeySet();
    final Set<B3Digest> hidden = ConcurrentHashMap.newKeySet();

    InstrumentedDirectoryService(DirectoryService inner) {
        super(inner);
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        fetched.add(digest);
        return hidden.contains(digest) ? Optional.empty() : super.get(digest);
    }
}
