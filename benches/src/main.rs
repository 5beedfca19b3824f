fn main() {
    println!("TODO");
}
