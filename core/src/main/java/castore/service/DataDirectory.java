package castore.service;

import java.nio.file.Path;
import java.util.Optional;

/**
 * A backend that keeps data in a directory of this machine (the local store, a cache's disk
 * tier). An import must not read that directory as part of a tree it stores: it would store the
 * store, and the files it is writing change while they are read.
 */
public interface DataDirectory {
    /** The directory, if this backend has one. */
    Optional<Path> dataDirectory();
}
