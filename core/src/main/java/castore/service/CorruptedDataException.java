package castore.service;

import java.io.IOException;

/** Stored data does not match its digest: it is reported, never returned. */
public class CorruptedDataException extends IOException {
    public CorruptedDataException(String message) {
        super(message);
    }
}
