package castore.model;

/**
 * Data that breaks a rule of the castore model: a bad digest, name, Directory or closure.
 * Its message is meant for users: it names the offending value.
 */
public class InvalidDataException extends RuntimeException {
    public InvalidDataException(String message) {
        super(message);
    }

    public InvalidDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
