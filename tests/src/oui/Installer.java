// A stand-in for Oracle Universal Installer's silent mode, for tests (Oracle's installers
// cannot be fetched here). It takes OUI's command line as WIT writes it:
//   java -jar INSTALLER.jar -silent ORACLE_HOME=DIR -responseFile FILE -invPtrLoc FILE
//        -ignoreSysPrereqs -force -novalidation
// reads the response file (INSTALL_TYPE) and the inventory pointer (inventory_loc), refuses a
// non-empty Oracle Home, and writes a small Oracle Home: inventory/registry.xml naming the
// product and version, a tool, and commEnv.sh recording the JDK it ran with, as OUI does.
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.Map;

public class Installer {
    static Map<String, String> properties(Path file) throws IOException {
        Map<String, String> values = new HashMap<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            int eq = line.indexOf('=');
            if (eq > 0 && !line.startsWith("#") && !line.startsWith("[")) {
                values.put(line.substring(0, eq).trim(), line.substring(eq + 1).trim());
            }
        }
        return values;
    }

    static void write(Path file, String text) throws IOException {
        Files.createDirectories(file.getParent());
        Files.write(file, text.getBytes(StandardCharsets.UTF_8));
    }

    public static void main(String[] args) throws Exception {
        String home = null;
        Path response = null;
        Path pointer = null;
        boolean silent = false;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("-silent")) silent = true;
            else if (args[i].startsWith("ORACLE_HOME=")) home = args[i].substring(12);
            else if (args[i].equals("-responseFile")) response = Paths.get(args[++i]);
            else if (args[i].equals("-invPtrLoc")) pointer = Paths.get(args[++i]);
        }
        if (!silent || home == null || response == null || pointer == null) {
            System.err.println("usage: -silent ORACLE_HOME=DIR -responseFile FILE -invPtrLoc FILE");
            System.exit(2);
        }
        String type = properties(response).get("INSTALL_TYPE");
        String inventory = properties(pointer).get("inventory_loc");
        if (type == null || inventory == null) {
            System.err.println("[FATAL] INSTALL_TYPE or inventory_loc missing");
            System.exit(3);
        }
        Path oracleHome = Paths.get(home);
        if (Files.isDirectory(oracleHome)) {
            try (java.util.stream.Stream<Path> entries = Files.list(oracleHome)) {
                boolean used = entries.map(p -> p.getFileName().toString())
                        .anyMatch(n -> !n.equals("oraInst.loc") && !n.equals("oraInventory"));
                if (used) {
                    System.err.println("[FATAL] [INS-32016] The specified Oracle Home " + home + " is not empty.");
                    System.exit(4);
                }
            }
        }
        String version;
        try (InputStream in = Installer.class.getResourceAsStream("/version.txt")) {
            version = new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        }
        System.out.println("Launcher log file is /tmp/OraInstall/launcher.log.");
        System.out.println("Installing " + type + " " + version + " into " + home);
        write(oracleHome.resolve("inventory/registry.xml"),
                "<?xml version=\"1.0\"?>\n<registry home=\"" + home + "\"><distributions>"
                + "<distribution status=\"installed\" name=\"" + type + "\" version=\"" + version + "\"/>"
                + "</distributions></registry>\n");
        write(oracleHome.resolve("inventory/locks/oh.lock"), "");
        write(oracleHome.resolve("wlserver/server/lib/readme.txt"), "installed by OUI\n");
        write(oracleHome.resolve("oracle_common/common/bin/commEnv.sh"),
                "JAVA_HOME=\"" + System.getProperty("java.home") + "\"\nexport JAVA_HOME\n");
        Path tool = oracleHome.resolve("wlserver/server/bin/hello.sh");
        write(tool, "#!/bin/sh\necho \"hello from " + type + " " + version + "\"\n");
        Files.setPosixFilePermissions(tool, PosixFilePermissions.fromString("rwxr-x---"));
        write(Paths.get(inventory).resolve("ContentsXML/inventory.xml"),
                "<INVENTORY><HOME_LIST><HOME NAME=\"OracleHome1\" LOC=\"" + home + "\" TYPE=\"O\" IDX=\"1\"/>"
                + "</HOME_LIST></INVENTORY>\n");
        System.out.println("The installation of " + type + " " + version + " completed successfully.");
    }
}
