package castore.service;

import java.io.IOException;

/** An object a tree refers to is missing from its service. */
public class NotFoundException extends IOException {
    public NotFoundException(String message) {
        super(message);
    }
}
