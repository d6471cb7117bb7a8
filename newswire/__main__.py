from newswire.cli import main

main(prog_name="newswire")
